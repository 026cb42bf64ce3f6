#pragma once
// The command line of chat-loadgen and the plan derived from it: which URL, room and role each
// connection has. Parsed once in main before any thread starts; read-only afterwards.

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chat::loadgen {

enum class Protocol { kChat, kSocketIo };

struct Options {
  Protocol protocol = Protocol::kChat;
  std::vector<std::string> urls;
  int connections = 1;
  int rooms = 1;
  int senders_per_room = -1;  // -1: 1 when --rate > 0, else 0
  double rate = 0;            // messages per second, all senders together
  double warmup_s = 0;
  double duration_s = 10;
  double idle_s = 0;
  double drain_s = 1;
  int text_bytes = 64;
  int connect_concurrency = 200;
  int join_concurrency = 200;
  double connect_timeout_s = 10;  // one connection: SYN to ready
  double join_timeout_s = 60;     // the whole join phase
  int threads = 1;
  std::string jwt_secret;  // raw bytes
  int64_t jwt_ttl_s = 3600;
  std::string user_prefix = "u";
  std::string room_prefix;
  bool token_in_query = false;
  bool deflate = false;  // offer permessage-deflate
  int senders_on = -1;   // url index that gets every sender; the others get the pure receivers
  bool exclude_self = false;
  std::vector<int> server_pids;
  std::optional<int64_t> baseline_rss_kib;
  std::string bind_source = "auto";  // auto (when the target is loopback), none, or the first address
  int conns_per_source = 10000;
  int tick_us = 1000;
  int max_queued = 1024;  // frames waiting in one connection's send queue before sends are skipped
  bool quiet = false;
};

// Parses argv. On --help prints usage and exits 0; on a bad argument prints why and exits 2.
Options ParseOptions(int argc, char** argv);

// A parsed ws:// URL and where it resolves.
struct Target {
  std::string url;
  std::string host_header;  // host:port
  std::string target;       // path and query
  boost::asio::ip::tcp::endpoint endpoint;
};
// Resolves each URL (adding the protocol's default path when none is given); exits 2 on failure.
std::vector<Target> ResolveTargets(const Options& options);

// What one connection does.
struct ConnPlan {
  uint32_t index = 0;  // i: user <prefix><i>, room i % rooms
  uint32_t room = 0;
  uint16_t url = 0;
  bool sender = false;
};
std::vector<ConnPlan> MakePlans(const Options& options);

}  // namespace chat::loadgen
