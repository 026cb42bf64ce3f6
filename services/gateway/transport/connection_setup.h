#pragma once
// What a session hands its ChatConnection, the same for every transport: the limits from
// configuration, and `post`/`post_after` bound to the session's strand-like io_context, dropped once
// the session has finished.

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>

#include "domain/chat_connection.h"
#include "gateway_config.h"

namespace chat::gateway {

ConnectionLimits ConnectionLimitsFrom(const GatewayConfig& config);

// The label of chat_disconnects_total for a session that ended: slow_consumer, flooding, kicked,
// shutdown or server when the server closed it with `close_code`; client or error otherwise.
std::string_view DisconnectLabel(bool closed_by_server, uint16_t close_code, std::string_view reason);

// `Session` has `bool finished() const`, read on its own thread.
template <typename Session, typename Executor>
ChatConnection::Post PostTo(std::weak_ptr<Session> weak, Executor executor) {
  return [weak = std::move(weak), executor](std::function<void()> fn) {
    boost::asio::post(executor, [weak, fn = std::move(fn)] {
      if (auto self = weak.lock(); self && !self->finished()) fn();
    });
  };
}

template <typename Session, typename Executor>
ChatConnection::PostAfter PostAfterTo(std::weak_ptr<Session> weak, Executor executor) {
  return [weak = std::move(weak), executor](std::chrono::milliseconds delay, std::function<void()> fn) {
    // Rare (a failed gap fetch): a timer of its own, alive until it fires.
    auto timer = std::make_shared<boost::asio::steady_timer>(executor, delay);
    timer->async_wait([weak, timer, fn = std::move(fn)](boost::system::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock(); self && !self->finished()) fn();
    });
  };
}

}  // namespace chat::gateway
