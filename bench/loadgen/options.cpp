#include "options.h"

#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "jwt_mint.h"

namespace chat::loadgen {

namespace {

constexpr const char* kUsage = R"(usage: chat-loadgen --url ws://HOST:PORT[/PATH] [options]

Opens N WebSocket connections, joins each to a room, sends timestamped messages at a steady
aggregate rate and measures delivery and ack latency. The last line of stdout is one JSON report;
progress and a readable summary go to stderr.

target
  --url URL                  ws:// URL; repeat for several servers (connection i uses url[i % U]).
                             Default path: /ws (chat), /socket.io/?EIO=4&transport=websocket (socketio)
  --protocol chat|socketio   wire protocol (default chat)
  --senders-on I             every sender connects to url[I]; pure receivers to the other URLs
                             (e.g. two replicas: senders on A, receivers on B)
auth
  --jwt-secret S             HS256 secret, raw bytes as given (what JWT_SECRET holds)
  --jwt-secret-hex H         the same, given as hex
  --jwt-ttl SECONDS          exp = now + this (default 3600)
  --user-prefix P            connection i is user P<i> (default u)
  --token-in-query           chat: pass ?token= instead of Sec-WebSocket-Protocol: chat.v1, bearer.<jwt>
  --deflate                  offer permessage-deflate (the server decides)
load
  --connections N            (default 1)
  --rooms R                  connection i joins room <room-prefix>r<i % R> (default 1)
  --room-prefix P            (default empty)
  --senders-per-room K       the first K members of each room also send (default 1 if --rate > 0)
  --rate M                   messages per second, all senders together, evenly paced (default 0)
  --text-bytes B             message text size, "t=<ns>;" plus padding (default 64)
  --exclude-self             the server does not echo a message to its sender (expected deliveries)
phases (seconds)
  --idle-seconds S           hold the joined connections idle before the warmup (default 0)
  --warmup S                 send, not recorded (default 0)
  --duration S               send and record (default 10)
  --drain S                  wait for in-flight deliveries after the last send (default 1)
connections
  --connect-concurrency C    connects in flight at once (default 200)
  --join-concurrency C       joins in flight at once (default 200)
  --connect-timeout S        one connection, SYN to ready (default 10)
  --join-timeout S           the whole join phase (default 60)
  --bind-source auto|none|A  source address of the first connection; the next ones count up from it,
                             --conns-per-source each (default auto: 127.0.0.2 for a loopback target)
  --conns-per-source N       (default 10000)
process
  --threads T                io_context threads, each with its share of the connections (default 1)
  --tick-us U                sender pacing tick (default 1000)
  --max-queued F             frames queued on one connection before a send is skipped (default 1024)
  --server-pid PID[,PID..]   read VmRSS of these processes (repeatable); summed in the report
  --baseline-rss KIB         use this as the "before" RSS instead of reading it before connecting
  --quiet                    no progress lines on stderr
)";

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr, "chat-loadgen: %s\n(--help for usage)\n", why.c_str());
  std::exit(2);
}

template <typename T>
T ParseNumber(std::string_view name, std::string_view text, T min) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    Usage("--" + std::string(name) + ": not a number: '" + std::string(text) + "'");
  }
  if (value < min) Usage("--" + std::string(name) + " must be at least " + std::to_string(min));
  return value;
}

// Prefixes end up inside JSON strings and user names: keep them to characters that need no escaping.
std::string PlainName(std::string_view name, std::string_view text) {
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.' || c == ':';
    if (!ok) Usage("--" + std::string(name) + ": only letters, digits and -_.: are allowed");
  }
  return std::string(text);
}

}  // namespace

Options ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg.substr(0, 2) != "--") Usage("unexpected argument '" + std::string(arg) + "'");
    std::string_view name = arg.substr(2);
    std::optional<std::string_view> inline_value;
    if (auto eq = name.find('='); eq != std::string_view::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    auto flag = [&] {
      if (inline_value) Usage("--" + std::string(name) + " takes no value");
    };
    auto value = [&]() -> std::string_view {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) Usage("--" + std::string(name) + " needs a value");
      return argv[++i];
    };
    if (name == "url") {
      o.urls.emplace_back(value());
    } else if (name == "protocol") {
      std::string_view p = value();
      if (p == "chat") {
        o.protocol = Protocol::kChat;
      } else if (p == "socketio") {
        o.protocol = Protocol::kSocketIo;
      } else {
        Usage("--protocol must be chat or socketio");
      }
    } else if (name == "senders-on") {
      o.senders_on = ParseNumber<int>(name, value(), 0);
    } else if (name == "jwt-secret") {
      o.jwt_secret = std::string(value());
    } else if (name == "jwt-secret-hex") {
      auto raw = DecodeHex(value());
      if (!raw) Usage("--jwt-secret-hex: not an even number of hex digits");
      o.jwt_secret = *raw;
    } else if (name == "jwt-ttl") {
      o.jwt_ttl_s = ParseNumber<int64_t>(name, value(), 1);
    } else if (name == "user-prefix") {
      o.user_prefix = PlainName(name, value());
    } else if (name == "deflate") {
      flag();
      o.deflate = true;
    } else if (name == "token-in-query") {
      flag();
      o.token_in_query = true;
    } else if (name == "connections") {
      o.connections = ParseNumber<int>(name, value(), 1);
    } else if (name == "rooms") {
      o.rooms = ParseNumber<int>(name, value(), 1);
    } else if (name == "room-prefix") {
      o.room_prefix = PlainName(name, value());
    } else if (name == "senders-per-room") {
      o.senders_per_room = ParseNumber<int>(name, value(), 0);
    } else if (name == "rate") {
      o.rate = ParseNumber<double>(name, value(), 0);
    } else if (name == "text-bytes") {
      o.text_bytes = ParseNumber<int>(name, value(), 1);
    } else if (name == "exclude-self") {
      flag();
      o.exclude_self = true;
    } else if (name == "idle-seconds") {
      o.idle_s = ParseNumber<double>(name, value(), 0);
    } else if (name == "warmup") {
      o.warmup_s = ParseNumber<double>(name, value(), 0);
    } else if (name == "duration") {
      o.duration_s = ParseNumber<double>(name, value(), 0);
    } else if (name == "drain") {
      o.drain_s = ParseNumber<double>(name, value(), 0);
    } else if (name == "connect-concurrency") {
      o.connect_concurrency = ParseNumber<int>(name, value(), 1);
    } else if (name == "join-concurrency") {
      o.join_concurrency = ParseNumber<int>(name, value(), 1);
    } else if (name == "connect-timeout") {
      o.connect_timeout_s = ParseNumber<double>(name, value(), 0.001);
    } else if (name == "join-timeout") {
      o.join_timeout_s = ParseNumber<double>(name, value(), 0.001);
    } else if (name == "bind-source") {
      o.bind_source = std::string(value());
    } else if (name == "conns-per-source") {
      o.conns_per_source = ParseNumber<int>(name, value(), 1);
    } else if (name == "threads") {
      o.threads = ParseNumber<int>(name, value(), 1);
    } else if (name == "tick-us") {
      o.tick_us = ParseNumber<int>(name, value(), 50);
    } else if (name == "max-queued") {
      o.max_queued = ParseNumber<int>(name, value(), 1);
    } else if (name == "server-pid") {
      std::string_view list = value();
      while (!list.empty()) {
        auto comma = list.find(',');
        std::string_view one = list.substr(0, comma);
        if (!one.empty()) o.server_pids.push_back(ParseNumber<int>(name, one, 1));
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    } else if (name == "baseline-rss") {
      o.baseline_rss_kib = ParseNumber<int64_t>(name, value(), 0);
    } else if (name == "quiet") {
      flag();
      o.quiet = true;
    } else {
      Usage("unknown option --" + std::string(name));
    }
  }
  if (o.urls.empty()) Usage("--url is required");
  if (o.jwt_secret.empty()) Usage("--jwt-secret (or --jwt-secret-hex) is required");
  if (o.senders_on >= static_cast<int>(o.urls.size())) {
    Usage("--senders-on must be an index into the --url list");
  }
  if (o.senders_per_room < 0) o.senders_per_room = o.rate > 0 ? 1 : 0;
  if (o.rate > 0 && o.senders_per_room == 0) Usage("--rate > 0 needs --senders-per-room of at least 1");
  if (o.threads > o.connections) o.threads = o.connections;
  return o;
}

std::vector<Target> ResolveTargets(const Options& options) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::resolver resolver(ioc);
  std::vector<Target> targets;
  for (const auto& url : options.urls) {
    std::string_view rest = url;
    if (rest.substr(0, 5) != "ws://") Usage("only ws:// URLs are supported: '" + url + "'");
    rest.remove_prefix(5);
    auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string path = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
    if (path.empty() || path == "/") {
      path = options.protocol == Protocol::kChat ? "/ws" : "/socket.io/?EIO=4&transport=websocket";
    }
    auto colon = authority.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == authority.size()) {
      Usage("URL needs host:port: " + url);
    }
    std::string host(authority.substr(0, colon));
    std::string port(authority.substr(colon + 1));
    boost::system::error_code ec;
    auto results = resolver.resolve(boost::asio::ip::tcp::v4(), host, port, ec);
    if (ec || results.empty()) Usage("cannot resolve " + host + ":" + port + ": " + ec.message());
    Target t;
    t.url = url;
    t.host_header = std::string(authority);
    t.target = path;
    t.endpoint = results.begin()->endpoint();
    targets.push_back(std::move(t));
  }
  return targets;
}

std::vector<ConnPlan> MakePlans(const Options& options) {
  const int urls = static_cast<int>(options.urls.size());
  std::vector<ConnPlan> plans(static_cast<size_t>(options.connections));
  int receivers_seen = 0;
  for (int i = 0; i < options.connections; ++i) {
    ConnPlan& p = plans[static_cast<size_t>(i)];
    p.index = static_cast<uint32_t>(i);
    p.room = static_cast<uint32_t>(i % options.rooms);
    p.sender = i / options.rooms < options.senders_per_room;
    if (options.senders_on < 0 || urls == 1) {
      p.url = static_cast<uint16_t>(i % urls);
    } else if (p.sender) {
      p.url = static_cast<uint16_t>(options.senders_on);
    } else {
      // Round-robin over the other URLs.
      int k = receivers_seen++ % (urls - 1);
      p.url = static_cast<uint16_t>(k >= options.senders_on ? k + 1 : k);
    }
  }
  return plans;
}

}  // namespace chat::loadgen
