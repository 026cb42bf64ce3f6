#include "domain/seq_orderer.h"

#include <algorithm>

namespace chat::gateway {

SeqOrderer::Step SeqOrderer::Start(int64_t last, Clock::time_point now) {
  Step step;
  started_ = true;
  last_ = last;
  held_.erase(held_.begin(), held_.upper_bound(last_));
  Drain(step);
  MaybeFetch(step, now, false);
  return step;
}

bool SeqOrderer::TakeNext(int64_t seq) {
  if (!started_ || seq != last_ + 1 || !held_.empty()) return false;
  last_ = seq;
  highest_seen_ = std::max(highest_seen_, seq);
  return true;
}

SeqOrderer::Step SeqOrderer::OnLive(SeqFrame frame, Clock::time_point now) {
  Step step;
  if (!started_ && options_.start_on_first_frame) {
    started_ = true;
    last_ = frame.seq - 1;
  }
  if (started_ && frame.seq <= last_) {
    ++duplicates_;
    return step;
  }
  highest_seen_ = std::max(highest_seen_, frame.seq);
  if (started_ && frame.seq == last_ + 1) {
    last_ = frame.seq;
    step.deliver.push_back(std::move(frame));
    Drain(step);
    return step;
  }
  // Ahead of a gap, or not started: hold it, within bounds. A frame dropped for memory is fetched later
  // (highest_seen_ remembers it exists).
  if (held_.size() < options_.max_held) held_.emplace(frame.seq, std::move(frame));
  if (started_) MaybeFetch(step, now, false);
  return step;
}

SeqOrderer::Step SeqOrderer::OnFetched(std::vector<SeqFrame> frames, Clock::time_point now) {
  Step step;
  fetching_ = false;
  // A full page means there may be more than was asked for.
  bool full_page = fetch_limit_asked_ == options_.fetch_limit && frames.size() >= fetch_limit_asked_;
  for (auto& f : frames) {
    if (f.seq <= last_) continue;
    if (f.seq != last_ + 1) break;  // not consecutive: ask again for the rest
    highest_seen_ = std::max(highest_seen_, f.seq);
    last_ = f.seq;
    held_.erase(f.seq);
    step.deliver.push_back(std::move(f));
  }
  held_.erase(held_.begin(), held_.upper_bound(last_));
  Drain(step);
  if (full_page) highest_seen_ = std::max(highest_seen_, last_ + 1);
  MaybeFetch(step, now, false);
  return step;
}

void SeqOrderer::OnFetchFailed(Clock::time_point now) {
  // Stays "fetching" until the refetch time passes, so a failing backend is not hammered.
  fetching_ = true;
  fetch_started_ = now;
}

SeqOrderer::Step SeqOrderer::OnTick(Clock::time_point now) {
  Step step;
  if (fetching_ && now - fetch_started_ >= options_.refetch_after) MaybeFetch(step, now, true);
  return step;
}

SeqOrderer::Step SeqOrderer::Retry(Clock::time_point now) {
  Step step;
  if (fetching_) MaybeFetch(step, now, true);
  return step;
}

SeqOrderer::Step SeqOrderer::Probe(Clock::time_point now) {
  Step step;
  if (!started_ || fetching_) return step;
  fetching_ = true;
  fetch_started_ = now;
  fetch_limit_asked_ = options_.fetch_limit;
  step.fetch = GapFetch{last_, options_.fetch_limit};
  return step;
}

void SeqOrderer::Drain(Step& step) {
  while (!held_.empty() && held_.begin()->first == last_ + 1) {
    last_ = held_.begin()->first;
    step.deliver.push_back(std::move(held_.begin()->second));
    held_.erase(held_.begin());
  }
  held_.erase(held_.begin(), held_.upper_bound(last_));
}

void SeqOrderer::MaybeFetch(Step& step, Clock::time_point now, bool force) {
  if (!started_ || highest_seen_ <= last_) {
    if (force) fetching_ = false;
    return;
  }
  if (fetching_ && !force) return;
  fetching_ = true;
  fetch_started_ = now;
  int64_t missing = highest_seen_ - last_;
  fetch_limit_asked_ = static_cast<uint32_t>(std::min<int64_t>(missing, options_.fetch_limit));
  step.fetch = GapFetch{last_, fetch_limit_asked_};
}

}  // namespace chat::gateway
