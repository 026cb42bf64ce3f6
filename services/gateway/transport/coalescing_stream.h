#pragma once
// The write side of a WebSocket connection: one ordered queue of outgoing bytes that go to the socket
// in batches. Text frames share their body with every receiver (QueueText: only a 2-10 byte header is
// per connection); control frames (QueueFrame) and the handshake answer (QueueRaw) take the same
// queue, so the byte order on the wire is the order of the calls. While one socket write is in flight,
// whatever is queued meanwhile waits and goes out with the next one: a connection that is behind
// catches up with one syscall for many frames; an idle connection's frame goes out at once.
//
// A text frame may also be held (QueueText's `hold`): it waits for the next write instead of starting
// one, so that a connection's room messages are gathered until the lane's flush (transport/lane_flusher.h).
//
// Over plain TCP a flush is a gather write of the queued buffers (no copy); over TLS they are copied
// into one buffer first, so that they make few TLS records. SetOwner names the object that owns this
// stream: a flush in flight holds it alive.
//
// A flush asked for `now` (room deliveries: each is a connection's last frame of its lane's batch; the
// handshake's answer with the welcome; acks; keepalive pings and pongs) writes on the caller's stack
// over plain TCP, non-blocking, gathering straight from the queue (no vector filled, nothing
// allocated), and only what the socket does not take goes on through async_write. Fan-out makes one
// such write per delivery; through async_write each cost a reactor operation of ~1.1 KB (past glibc's
// per-thread cache), a posted completion and the owner's reference count: ~10 % of the gateway's CPU
// at 25,000 deliveries/s. The keepalive sweep pings every quiet connection in one burst: through
// async_write their reactor operations, alive side by side, fragmented the heap (most likely): a round
// of pings raised the RSS of 19,000 idle connections by 1.1-5.4 MB (~200 B each), 0.7 MB written here.
// Other frames keep the async path, where what a handler queues behind its first write (a resume's
// replay, say) goes out together with the next one.

#include <array>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace chat::gateway {

template <typename Next>
class CoalescingStream {
 public:
  using executor_type = typename Next::executor_type;
  using next_layer_type = Next;
  // A TLS flush buffer grown past this by a burst is given back.
  static constexpr size_t kLinearKeep = 256 * 1024;
  // Buffers in one gather write (the kernel takes up to 1024), and in one write on the caller's stack
  // (Asio's limit for one call).
  static constexpr size_t kMaxGather = 256;
  static constexpr size_t kMaxNowBuffers = 64;
  // Queue entries an idle connection keeps allocated.
  static constexpr size_t kKeepChunks = 2;

  template <typename... Args>
  explicit CoalescingStream(Args&&... args) : next_(std::forward<Args>(args)...) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }
  Next& next_layer() noexcept { return next_; }
  const Next& next_layer() const noexcept { return next_; }
  void SetOwner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }
  // Bytes queued and not yet written (the write in flight included).
  size_t queued_bytes() const { return queued_bytes_; }
  // Socket writes made, and frames queued: their ratio is the batching.
  uint64_t flushes() const { return flushes_; }
  bool failed() const { return static_cast<bool>(error_); }

  // Puts the socket in non-blocking mode for reads and writes made on the caller's stack. Once: each
  // call of Asio's non_blocking(true) is an ioctl.
  boost::system::error_code MakeNonBlocking() {
    boost::system::error_code ec;
    if (!non_blocking_) {
      next_.non_blocking(true, ec);
      non_blocking_ = !ec;
    }
    return ec;
  }

  // Queues one unfragmented, unmasked text frame with `payload` as its body; `compressed`: the payload
  // is permessage-deflate data (RSV1 set). `hold`: no write starts for it; it goes out with the next
  // write (one in flight, or the next Queue*, or FlushHeld). Returns true if it is held that way with
  // no write in flight, i.e. only a FlushHeld would send it.
  // `now`: a write it starts is made on this stack if the socket takes it (see above).
  bool QueueText(std::shared_ptr<const std::string> payload, bool compressed = false, bool hold = false,
                 bool now = false) {
    if (error_) return false;
    Chunk c;
    SetHead(c, 0x1, payload->size());
    if (compressed) c.head[0] = static_cast<char>(c.head[0] | 0x40);
    c.shared = std::move(payload);
    Push(std::move(c), !hold, now);
    return hold && writing_.empty();
  }

  // Writes what is held, unless a write is in flight (then it goes out with the next one). True if
  // it started a write.
  bool FlushHeld(bool now = false) {
    if (error_ || !writing_.empty() || queue_.empty()) return false;
    Flush(now);
    return true;
  }

  // Queues one unfragmented, unmasked frame of its own bytes (ping, pong, close: `opcode` 0x9, 0xa, 0x8).
  // `now`: as QueueText's.
  void QueueFrame(uint8_t opcode, std::string payload, bool now = false) {
    if (error_) return;
    Chunk c;
    SetHead(c, opcode, payload.size());
    c.owned = std::move(payload);
    Push(std::move(c), true, now);
  }

  // Queues bytes as they are (the handshake's HTTP answer). `hold`: they wait for the next write, as
  // QueueText's held frames do.
  void QueueRaw(std::string bytes, bool hold = false) {
    if (error_) return;
    Chunk c;
    c.owned = std::move(bytes);
    Push(std::move(c), !hold);
  }

  // Drops what is queued behind the write in flight (a slow consumer about to be closed).
  void DropQueued() {
    for (const Chunk& c : queue_) queued_bytes_ -= c.size();
    queue_.clear();
  }

  // Runs `fn` once everything queued has been written (or writing failed).
  template <typename Fn>
  void WhenFlushed(Fn fn) {
    FlushHeld();
    if (error_ || (queue_.empty() && writing_.empty())) return fn();
    on_flushed_ = std::make_unique<Callback<Fn>>(std::move(fn));
  }

 private:
  struct Chunk {
    std::shared_ptr<const std::string> shared;  // a frame body shared with other connections
    std::string owned;                          // or bytes of its own (control frames, HTTP)
    std::array<char, 10> head{};
    uint8_t head_len = 0;
    size_t size() const { return head_len + (shared ? shared->size() : owned.size()); }
  };
  struct Flushed {
    virtual ~Flushed() = default;
    virtual void Run() = 0;
  };
  template <typename Fn>
  struct Callback : Flushed {
    explicit Callback(Fn f) : fn(std::move(f)) {}
    void Run() override { fn(); }
    Fn fn;
  };

  static constexpr bool kTls =
      !std::is_same_v<Next, boost::beast::tcp_stream> && !std::is_same_v<Next, boost::asio::ip::tcp::socket>;

  static void SetHead(Chunk& c, uint8_t opcode, size_t n) {
    c.head[0] = static_cast<char>(0x80 | opcode);  // FIN
    if (n < 126) {
      c.head[1] = static_cast<char>(n);
      c.head_len = 2;
    } else if (n < 65536) {
      c.head[1] = 126;
      c.head[2] = static_cast<char>(n >> 8);
      c.head[3] = static_cast<char>(n);
      c.head_len = 4;
    } else {
      c.head[1] = 127;
      for (int i = 0; i < 8; ++i) c.head[2 + i] = static_cast<char>(static_cast<uint64_t>(n) >> (56 - 8 * i));
      c.head_len = 10;
    }
  }

  void Push(Chunk c, bool flush = true, bool now = false) {
    queued_bytes_ += c.size();
    queue_.push_back(std::move(c));
    if (flush && writing_.empty()) Flush(now);
  }

  void Flush(bool now = false) {
    ++flushes_;
    size_t written = 0;  // bytes of the queue's front chunk that WriteNow got out
    if constexpr (!kTls) {
      // Not with a WhenFlushed waiting: its callback must not run inside the caller's Queue*.
      if (now && !on_flushed_ && WriteNow(written)) return;
    }
    // The chunks being written move to writing_, which nothing touches until the write completes:
    // the gather list points into them (frame headers and short owned bytes live inside a Chunk).
    const size_t n = std::min(queue_.size(), kMaxGather);
    writing_.assign(std::make_move_iterator(queue_.begin()),
                    std::make_move_iterator(queue_.begin() + static_cast<std::ptrdiff_t>(n)));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    if constexpr (kTls) {
      linear_.clear();
      for (const Chunk& c : writing_) {
        linear_.append(c.head.data(), c.head_len);
        if (c.shared) {
          linear_.append(*c.shared);
        } else {
          linear_.append(c.owned);
        }
      }
      boost::asio::async_write(next_, boost::asio::buffer(linear_), Completion());
    } else {
      gather_.clear();
      for (const Chunk& c : writing_) {
        if (c.head_len) gather_.emplace_back(c.head.data(), c.head_len);
        gather_.emplace_back(Body(c));
      }
      if (written > 0) ConsumeGather(written);
      boost::asio::async_write(next_, gather_, Completion());
    }
  }

  static boost::asio::const_buffer Body(const Chunk& c) {
    return c.shared ? boost::asio::buffer(*c.shared) : boost::asio::buffer(c.owned);
  }

  // A write in flight holds the owner alive until its completion.
  auto Completion() {
    return [this, keep = owner_.lock()](boost::beast::error_code ec, size_t) { OnFlushed(ec); };
  }

  // Writes the queue on the caller's stack, non-blocking, gathering from the queued chunks themselves
  // (no writing_ or gather_ to fill: an idle connection's write allocates nothing). True if all of it
  // went out; otherwise the chunks that did are dropped and `written` is what went of the next one.
  // An error leaves the rest to the async write, which meets it again and reports it.
  bool WriteNow(size_t& written) {
    written = 0;
    if (MakeNonBlocking()) return false;
    while (!queue_.empty()) {
      std::array<boost::asio::const_buffer, kMaxNowBuffers> bufs;
      size_t nb = 0;
      size_t chunks = 0;
      for (const Chunk& c : queue_) {
        if (nb + 2 > bufs.size()) break;
        if (c.head_len) bufs[nb++] = boost::asio::const_buffer(c.head.data(), c.head_len);
        bufs[nb++] = Body(c);
        ++chunks;
      }
      boost::system::error_code ec;
      size_t wrote = next_.write_some(std::span<const boost::asio::const_buffer>(bufs.data(), nb), ec);
      if (ec) return false;
      size_t done = 0;  // chunks that went out whole
      while (done < chunks && wrote >= queue_[done].size()) {
        wrote -= queue_[done].size();
        queued_bytes_ -= queue_[done].size();
        ++done;
      }
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(done));
      if (done < chunks) {
        written = wrote;
        return false;  // the socket took what it could
      }
    }
    Idle();
    return true;
  }

  // Drops the first `n` bytes from the gather list.
  void ConsumeGather(size_t n) {
    size_t whole = 0;
    while (whole < gather_.size() && n >= gather_[whole].size()) n -= gather_[whole++].size();
    gather_.erase(gather_.begin(), gather_.begin() + static_cast<std::ptrdiff_t>(whole));
    if (n > 0) gather_.front() += n;
  }

  // Idle again: keep room for the usual one or two frames, give back what a burst took.
  void Idle() {
    if (queue_.capacity() > kKeepChunks) std::vector<Chunk>().swap(queue_);
    if (writing_.capacity() > kKeepChunks) std::vector<Chunk>().swap(writing_);
    if (gather_.capacity() > 2 * kKeepChunks) std::vector<boost::asio::const_buffer>().swap(gather_);
  }

  void OnFlushed(boost::beast::error_code ec) {
    for (const Chunk& c : writing_) queued_bytes_ -= c.size();
    writing_.clear();
    if (linear_.capacity() > kLinearKeep) std::string().swap(linear_);
    if (ec) {
      error_ = ec;
      queue_.clear();
      queued_bytes_ = 0;
    } else if (!queue_.empty()) {
      Flush();
    } else {
      Idle();
    }
    if (on_flushed_ && (error_ || (queue_.empty() && writing_.empty())))
      std::exchange(on_flushed_, nullptr)->Run();
  }

  Next next_;
  std::weak_ptr<void> owner_;
  // Vectors, not a deque: an empty std::deque still holds a 512-byte node on every connection.
  std::vector<Chunk> queue_;    // waiting for the next write
  std::vector<Chunk> writing_;  // in the write in flight (empty: no write in flight)
  size_t queued_bytes_ = 0;
  std::vector<boost::asio::const_buffer> gather_;
  std::string linear_;
  boost::beast::error_code error_;
  std::unique_ptr<Flushed> on_flushed_;
  uint64_t flushes_ = 0;
  bool non_blocking_ = false;  // the socket is in non-blocking mode (MakeNonBlocking)
};

}  // namespace chat::gateway
