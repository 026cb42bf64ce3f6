#pragma once
// One simulated client: connects (from its own source address), does the WebSocket handshake with its
// token, joins its room, sends the messages its worker's pacer hands it and reads everything the
// server sends, recording acks and stamped deliveries into the worker's Stats. It speaks WebSocket
// itself (ws_wire.h) over a plain non-blocking socket: a read goes into the connection's 512-byte
// buffer (then, if it filled, into the worker's scratch buffer until the socket is empty), and every
// whole frame in it is handled in place.
// Threading: a Connection lives on its worker's io_context and is only touched from that thread.

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
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

  // Connects; the worker hears OnConnectDone exactly once (ready or failed).
  void Start(boost::asio::ip::address source);
  // Sends the join; the worker hears OnJoinDone exactly once (joined, refused or closed first).
  void Join();
  // Sends one stamped message now; false (nothing sent) unless joined with room in the send queue.
  bool SendMessage(int64_t now_ns);
  // Closes the socket without a close handshake; nothing is counted as a disconnect afterwards.
  void Close();

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

  void OnConnect(boost::system::error_code ec);
  void OnTimeout();
  void OnUpgradeReply(const ws::UpgradeReply& reply);
  void Ready();
  void WaitReadable();
  void OnRead(boost::system::error_code ec, size_t n);
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
  void DoWrite();
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
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer connect_timer_;  // connect, handshake and (socketio) the namespace connect
  std::string expected_accept_;              // during the handshake only
  std::string in_;                           // bytes of a frame (or the upgrade reply) not whole yet
  std::array<char, 512> first_{};            // each read's first bytes: a usual frame whole
  ws::MessageAssembler assembler_;
  std::deque<std::string> out_;  // whole frames; the first `writing_` are being written
  size_t writing_ = 0;
  std::deque<Pending> pending_;  // requests without a reply yet, oldest first
};

}  // namespace chat::loadgen
