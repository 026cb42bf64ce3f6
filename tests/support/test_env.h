#pragma once
// Where the throwaway PostgreSQL and Redis of the test fixture listen: read from the file named by
// CHAT_TEST_ENV_FILE (KEY=VALUE lines written by tests/support/servers.sh).

#include <map>
#include <string>

#include "common/env_config.h"

namespace chat::testing {

struct TestServers {
  std::string database_url;
  std::string redis_host;
  int redis_port = 0;
};

// Fails the calling test (ADD_FAILURE) and returns empty values when the file is missing.
TestServers LoadTestServers();
// An environment made of the given variables only, for configuration tests.
EnvLookup MapEnv(std::map<std::string, std::string> vars);
// A name no other test run uses, for rooms and users.
std::string UniqueName(const std::string& prefix);

}  // namespace chat::testing
