#pragma once
// Runs a check over many sessions on their own io thread, a slice at a time: each slice is one posted
// handler and posts the next, so whatever else was posted to the thread meanwhile (deliveries, reads)
// runs between slices instead of waiting behind all of them.

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cstddef>
#include <memory>
#include <vector>

namespace chat::gateway {

template <typename Item, typename Fn>
void SweepInSlices(boost::asio::io_context& lane, std::vector<Item> items, size_t slice, Fn fn) {
  struct Sweep {
    std::vector<Item> items;
    size_t next = 0;
    size_t slice;
    Fn fn;
  };
  auto sweep = std::make_shared<Sweep>(Sweep{std::move(items), 0, slice > 0 ? slice : 1, std::move(fn)});
  struct Step {
    boost::asio::io_context& lane;
    std::shared_ptr<Sweep> sweep;
    void operator()() const {
      const size_t end = std::min(sweep->items.size(), sweep->next + sweep->slice);
      for (; sweep->next < end; ++sweep->next) sweep->fn(sweep->items[sweep->next]);
      if (sweep->next < sweep->items.size()) boost::asio::post(lane, Step{lane, sweep});
    }
  };
  if (!sweep->items.empty()) boost::asio::post(lane, Step{lane, std::move(sweep)});
}

}  // namespace chat::gateway
