#pragma once
// Ending the sending side of a client's stream, plain or TLS, once its last bytes are written. `keep`
// holds the session alive until a TLS close_notify has gone out.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>

namespace chat::gateway {

template <typename Keep>
void ShutdownStream(boost::asio::ip::tcp::socket& socket, Keep) {
  boost::beast::error_code ignored;
  socket.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
}

template <typename Keep>
void ShutdownStream(boost::beast::tcp_stream& stream, Keep) {
  boost::beast::error_code ignored;
  stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
}

template <typename Keep>
void ShutdownStream(boost::beast::ssl_stream<boost::beast::tcp_stream>& stream, Keep keep) {
  boost::beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  stream.async_shutdown([keep](boost::beast::error_code) {});
}

}  // namespace chat::gateway
