#include "messages_config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "common/text_rules.h"

namespace chat::messages {

absl::StatusOr<MessagesConfig> MessagesConfig::FromEnv(EnvLookup lookup) {
  MessagesConfig c;
  EnvReader env(std::move(lookup));
  c.grpc_addr = env.String("MESSAGES_GRPC_ADDR", c.grpc_addr);
  c.metrics_addr = env.String("MESSAGES_METRICS_ADDR", c.metrics_addr);
  c.database_url = env.String("DATABASE_URL", c.database_url);
  c.redis_addr = env.String("REDIS_ADDR", c.redis_addr);
  c.log_level = env.String("LOG_LEVEL", c.log_level);
  c.db_pool_size = env.Int("DB_POOL_SIZE", c.db_pool_size, 1, 256);
  c.commit_batch_max = env.Int("COMMIT_BATCH_MAX", c.commit_batch_max, 1, 10000);
  c.commit_linger_us = env.Int("COMMIT_LINGER_US", c.commit_linger_us, 0, 100000);
  c.commit_linger_after = env.Int("COMMIT_LINGER_AFTER", c.commit_linger_after, 2, 10000);
  c.queue_max = env.Int("MESSAGES_QUEUE_MAX", c.queue_max, 1, 10000000);
  c.text_limit_bytes = env.Int("TEXT_LIMIT_BYTES", c.text_limit_bytes, 1, 1 << 20);
  c.history_page_default = env.Int("HISTORY_PAGE_DEFAULT", c.history_page_default, 1, 10000);
  c.history_page_max = env.Int("HISTORY_PAGE_MAX", c.history_page_max, 1, 10000);
  c.resume_replay_max = env.Int("RESUME_REPLAY_MAX", c.resume_replay_max, 1, 100000);
  {
    std::string rooms = env.String("SEED_PUBLIC_ROOMS", "general,random");
    c.seed_public_rooms.clear();
    for (auto r : absl::StrSplit(rooms, ',', absl::SkipWhitespace())) {
      std::string room(absl::StripAsciiWhitespace(r));
      if (auto st = ValidateRoomName(room); !st.ok()) return st;
      c.seed_public_rooms.push_back(room);
    }
  }
  c.migrate_only = env.Bool("MIGRATE_ONLY", c.migrate_only);
  if (!env.status().ok()) return env.status();
  if (auto hp = ParseHostPort(c.redis_addr); !hp.ok()) return hp.status();
  return c;
}

}  // namespace chat::messages
