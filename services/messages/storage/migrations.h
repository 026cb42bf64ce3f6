#pragma once
// The versioned schema migrations, embedded at build time from storage/migrations/NNN_name.sql.

#include <string_view>
#include <vector>

namespace chat::messages {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

// Ascending by version.
const std::vector<Migration>& AllMigrations();

}  // namespace chat::messages
