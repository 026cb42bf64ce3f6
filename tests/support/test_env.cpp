#include "support/test_env.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>

#include "common/env_config.h"

namespace chat::testing {

TestServers LoadTestServers() {
  TestServers s;
  const char* path = std::getenv("CHAT_TEST_ENV_FILE");
  if (path == nullptr) {
    ADD_FAILURE() << "CHAT_TEST_ENV_FILE is not set: run through ctest, which starts the servers";
    return s;
  }
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return s;
  }
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "DATABASE_URL") s.database_url = value;
    if (key == "REDIS_ADDR") {
      auto hp = ParseHostPort(value);
      if (hp.ok()) {
        s.redis_host = hp->host;
        s.redis_port = hp->port;
      }
    }
  }
  EXPECT_FALSE(s.database_url.empty());
  EXPECT_NE(s.redis_port, 0);
  return s;
}

EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return prefix + "-" + std::to_string(rd() % 1000000) + "-" + std::to_string(counter++);
}

}  // namespace chat::testing
