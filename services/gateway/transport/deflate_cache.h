#pragma once
// The compressed form of the last frames sent on one io thread (lane). A broadcast reaches every
// member on a lane with the same shared frame, one after the other, so with permessage-deflate the
// frame is compressed once per lane instead of once per connection. Only its lane's thread uses it.

#include <array>
#include <memory>
#include <string>

#include "domain/permessage_deflate.h"

namespace chat::gateway {

class DeflateCache {
 public:
  // The compressed payload of `plain` with `window_bits`, from the cache or made now.
  std::shared_ptr<const std::string> Get(const std::shared_ptr<const std::string>& plain, int window_bits) {
    for (const auto& e : ring_) {
      if (e.plain == plain && e.window_bits == window_bits) return e.deflated;
    }
    auto deflated = std::make_shared<const std::string>(DeflateMessage(*plain, window_bits));
    ring_[next_] = Entry{plain, deflated, window_bits};
    next_ = (next_ + 1) % ring_.size();
    return deflated;
  }

 private:
  struct Entry {
    std::shared_ptr<const std::string> plain;  // held, so its address is not reused while cached
    std::shared_ptr<const std::string> deflated;
    int window_bits = 0;
  };
  std::array<Entry, 8> ring_;
  size_t next_ = 0;
};

}  // namespace chat::gateway
