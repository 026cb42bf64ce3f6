#pragma once
// The buffer a WebSocket session reads messages into. Beast prepares the buffer before the read
// waits, sized by max_size() - size() up to 1536 bytes: with a plain flat_buffer every idle
// connection held 1.5 KB for a message that has not arrived (heaptrack, scenario 3). This one lets
// Beast ask for kStep bytes at first; once a frame's header says how much follows, Beast asks for the
// rest in one piece, so a large message still costs one allocation.

#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>

namespace chat::gateway {

class SteppedReadBuffer : public boost::beast::flat_buffer {
 public:
  static constexpr std::size_t kStep = 128;
  // Capacity kept between messages; a larger buffer (after a large message) is given back.
  static constexpr std::size_t kKeep = 512;

  // Hides flat_buffer::max_size (Beast calls it on this type): "room for kStep more".
  std::size_t max_size() const noexcept { return size() + kStep; }

  // After a message has been handled.
  void Reset() {
    consume(size());
    if (capacity() > kKeep) shrink_to_fit();
  }
};

}  // namespace chat::gateway
