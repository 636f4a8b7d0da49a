// The --json shape, and the bounds on lists whose length the guest decides.
#include "cli/git/report.h"

#include <gtest/gtest.h>

namespace ksbox::git {
namespace {

TEST(Report, SyncJsonHasEveryFieldTheCliReads) {
  SyncReport r;
  r.decision = Decision::kFastForward;
  r.branch = "main";
  r.from = "aaaa";
  r.to = "bbbb";
  r.commits = {{"bbbbbbb", "Ann", "work"}};
  r.commit_count = 1;
  r.files_changed = 2;
  r.insertions = 3;
  r.deletions = 4;
  r.uncommitted = {{"x.txt", "untracked", 0}};
  nlohmann::json j = to_json(r);
  EXPECT_EQ(j["result"], "synced");
  EXPECT_EQ(j["commits"], nlohmann::json::parse(R"([{"id":"bbbbbbb","author":"Ann","subject":"work"}])"));
  EXPECT_EQ(j["files_changed"], 2);
  EXPECT_EQ(j["insertions"], 3);
  EXPECT_EQ(j["deletions"], 4);
  EXPECT_EQ(j["uncommitted"], nlohmann::json::parse(R"([{"path":"x.txt","status":"untracked"}])"));
  EXPECT_EQ(j["from"], "aaaa");
  EXPECT_EQ(j["to"], "bbbb");
  EXPECT_TRUE(j["artifacts"].is_array());
  EXPECT_TRUE(j["clone_branch"].is_null());
}

TEST(Report, GuestSizedListsAreBounded) {
  SyncReport r;
  for (int i = 0; i < 1005; ++i) r.uncommitted.push_back({"f" + std::to_string(i), "untracked", 0});
  nlohmann::json j = to_json(r);
  EXPECT_EQ(j["uncommitted"].size(), kMaxListedCommits);
  EXPECT_EQ(j["uncommitted_count"], 1005);
  char* buf = nullptr;
  size_t len = 0;
  FILE* out = open_memstream(&buf, &len);
  print_sync(r, out, out);
  fclose(out);
  std::string text(buf, len);
  free(buf);
  EXPECT_NE(text.find("... and 5 more"), std::string::npos);
  EXPECT_EQ(text.find("f1004"), std::string::npos);
}

}  // namespace
}  // namespace ksbox::git
