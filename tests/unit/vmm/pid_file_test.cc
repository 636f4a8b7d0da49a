#include "vmm/pid_file.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace ksbox {
namespace {

std::string temp_path(const char* name) {
  return std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + name);
}

TEST(PidFile, RecordsThisProcessAndGoesAwayAtTheEnd) {
  const auto path = temp_path("-vmm.pid");
  {
    PidFile f(path);
    const auto rec = read_pid_file(path);
    ASSERT_TRUE(rec);
    EXPECT_EQ(rec->pid, ::getpid());
    EXPECT_EQ(rec->starttime, process_starttime(::getpid()));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(PidFile, KeptWhenAskedTo) {
  const auto path = temp_path("-kept.pid");
  {
    PidFile f(path);
    f.keep();
  }
  EXPECT_TRUE(read_pid_file(path));
  std::filesystem::remove(path);
}

TEST(PidFile, MalformedRecordsAreNone) {
  const auto path = temp_path("-bad.pid");
  for (const char* text : {"", "{}", "[1,2]", R"({"pid":-1,"starttime":5})", R"({"pid":"1","starttime":5})",
                           R"({"pid":1,"starttime":-5})", R"({"pid":99999999,"starttime":5})"}) {
    std::ofstream(path) << text;
    EXPECT_FALSE(read_pid_file(path)) << text;
  }
  std::filesystem::remove(path);
  EXPECT_FALSE(read_pid_file(path));
}

TEST(ProcessStarttime, NoneForAMissingProcess) {
  EXPECT_TRUE(process_starttime(::getpid()));
  EXPECT_FALSE(process_starttime((1 << 22) + 1));
}

}  // namespace
}  // namespace ksbox
