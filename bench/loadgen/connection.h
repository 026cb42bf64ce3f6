#pragma once
// One simulated client: connects (from its own source address), does the WebSocket handshake with its
// token, joins its room, sends the messages its worker's pacer hands it and reads everything the
// server sends, recording acks and stamped deliveries into the worker's Stats. It speaks WebSocket
// itself (ws_wire.h) over a plain non-blocking socket in its worker's epoll set (edge-triggered): when
// it is readable, reads go into the worker's scratch buffer until one comes back short, and every whole
// frame read is handled in place; only a partial frame's tail is kept. Writes go out at once, what is
// queued in one gather write; what the socket does not take waits for it to be writable.
// Threading: a Connection lives on its worker's thread and is only touched from there.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "options.h"
#include "ws_wire.h"

namespace chat::loadgen {

class Worker;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { kNew, kConnecting, kHandshaking, kOpening, kReady, kJoining, kJoined, kClosed };

  Connection(Worker& worker, const ConnPlan& plan);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Connects from `source` (IPv4, host order; none: the kernel picks); the worker hears
  // OnConnectDone exactly once (ready or failed).
  void Start(std::optional<uint32_t> source);
  // Sends the join; the worker hears OnJoinDone exactly once (joined, refused or closed first).
  void Join();
  // Sends one stamped message now; false (nothing sent) unless joined with room in the send queue.
  bool SendMessage(int64_t now_ns);
  // Closes the socket without a close handshake; nothing is counted as a disconnect afterwards.
  void Close();
  // From the worker: epoll's events for the socket, and the connect deadline.
  void OnEvents(uint32_t events);
  void OnTimeout();

  State state() const { return state_; }
  bool was_ready() const { return was_ready_; }
  const ConnPlan& plan() const { return plan_; }

 private:
  enum class Kind : uint8_t { kJoin, kSend };
  struct Pending {
    uint32_t id;  // chat ref or Socket.IO ack id
    Kind kind;
    int64_t sent_ns;
  };

  void OnConnected();
  void OnUpgradeReply(const ws::UpgradeReply& reply);
  void Ready();
  void ReadAll(bool until_empty);
  // Handles bytes read: the upgrade reply while handshaking, then frames. Keeps a partial tail.
  void Consume(std::string_view data);
  // Handles the whole frames at the start of `data`; returns the bytes used.
  size_t HandleFrames(std::string_view data);
  void HandleMessage(std::string_view message, bool text);
  void HandleClose(std::string_view payload);
  void HandleChat(std::string_view text);
  void HandleSocketIo(std::string_view text);
  void OnReply(uint32_t id, std::optional<std::string> error);
  void OnDelivery(std::string_view message);             // the message object: room, seq, text...
  void Write(uint8_t opcode, std::string_view payload);  // one masked frame
  void WriteRaw(std::string bytes);
  void Flush();  // writes what is queued until done or the socket is full
  void Fail(const std::string& reason);
  uint32_t NextId();
  uint32_t NextMask();
  std::string Token() const;
  std::string RoomName() const;

  Worker& worker_;
  ConnPlan plan_;
  State state_ = State::kNew;
  bool was_ready_ = false;
  int64_t started_ns_ = 0;
  uint32_t next_id_ = 0;
  uint64_t messages_ = 0;
  uint64_t mask_state_;
  int fd_ = -1;
  bool write_blocked_ = false;   // the socket took less than offered: wait for EPOLLOUT
  std::string expected_accept_;  // during the handshake only
  std::string in_;               // bytes of a frame (or the upgrade reply) not whole yet
  ws::MessageAssembler assembler_;
  std::deque<std::string> out_;  // whole frames, oldest first
  size_t out_written_ = 0;       // bytes of out_.front() already written
  std::deque<Pending> pending_;  // requests without a reply yet, oldest first
};

}  // namespace chat::loadgen
