#pragma once
// One simulated client: connects (from its own source address), does the WebSocket handshake with its
// token, joins its room, sends the messages its worker's pacer hands it and reads everything the
// server sends, recording acks and stamped deliveries into the worker's Stats.
// Threading: a Connection lives on its worker's io_context and is only touched from that thread.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "options.h"

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

  void OnConnect(boost::beast::error_code ec);
  void OnHandshake(boost::beast::error_code ec);
  void Ready();
  void DoRead();
  void OnRead(boost::beast::error_code ec);
  void HandleChat(std::string_view text);
  void HandleSocketIo(std::string_view text);
  void OnReply(uint32_t id, std::optional<std::string> error);
  void OnDelivery(std::string_view message);  // the message object: room, seq, text...
  void Write(std::string frame);
  void DoWrite();
  void Fail(const std::string& reason);
  void DisarmTimeoutWhenIdle();
  uint32_t NextId();
  std::string Token() const;
  std::string RoomName() const;

  Worker& worker_;
  ConnPlan plan_;
  State state_ = State::kNew;
  bool was_ready_ = false;
  bool timeout_armed_ = false;  // the connect timeout still applies to the socket
  int64_t started_ns_ = 0;
  uint32_t next_id_ = 0;
  uint64_t messages_ = 0;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;
  std::unique_ptr<boost::beast::websocket::response_type> response_;  // during the handshake only
  std::deque<std::string> out_;                                       // front() is being written
  std::deque<Pending> pending_;  // requests without a reply yet, oldest first
};

}  // namespace chat::loadgen
