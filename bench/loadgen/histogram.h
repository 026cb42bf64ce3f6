#pragma once
// A log-linear histogram of non-negative integers (nanoseconds here), in the manner of HdrHistogram:
// exact below 256, above that 128 buckets per power of two, so any recorded value is known to within
// 1/128 (0.8 %). Fixed memory (7424 counters, allocated on the first record), O(1) record, mergeable.
// Not thread-safe: each worker thread records into its own and the results are merged at the end.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace chat::loadgen {

class Histogram {
 public:
  void Record(int64_t value) {
    uint64_t v = value < 0 ? 0 : static_cast<uint64_t>(value);
    if (counts_.empty()) counts_.assign(kBuckets, 0);
    ++counts_[Index(v)];
    ++count_;
    sum_ += static_cast<double>(v);
    min_ = std::min(min_, v);
    max_ = std::max(max_, v);
  }

  void Merge(const Histogram& other) {
    if (other.count_ == 0) return;
    if (counts_.empty()) counts_.assign(kBuckets, 0);
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return count_ == 0 ? 0 : max_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  double mean() const { return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_); }

  // The value at percentile p (0..100]: the middle of the bucket that holds the ceil(p% * count)-th
  // smallest sample, clamped to the exact min and max. 0 when empty.
  uint64_t Percentile(double p) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
    rank = std::clamp<uint64_t>(rank, 1, count_);
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(Lowest(i) + Width(i) / 2, min_, max_);
    }
    return max_;
  }

  // Exposed for tests of the bucket layout.
  static size_t Index(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    int shift = (63 - std::countl_zero(v)) - (kSubBits - 1);  // >= 1
    return kSub + static_cast<size_t>(shift - 1) * kHalf + static_cast<size_t>((v >> shift) - kHalf);
  }
  static uint64_t Lowest(size_t index) {
    if (index < kSub) return index;
    size_t k = index - kSub;
    int shift = static_cast<int>(k / kHalf) + 1;
    return (static_cast<uint64_t>(k % kHalf) + kHalf) << shift;
  }
  static uint64_t Width(size_t index) {
    if (index < kSub) return 1;
    return uint64_t{1} << (static_cast<int>((index - kSub) / kHalf) + 1);
  }

 private:
  static constexpr int kSubBits = 8;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;  // exact values below this
  static constexpr uint64_t kHalf = kSub / 2;                // buckets per power of two above it
  static constexpr size_t kBuckets = kSub + (64 - kSubBits) * kHalf;

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
};

}  // namespace chat::loadgen
