#include "preload/paths.h"

#include <gtest/gtest.h>

namespace memkv::preload {
namespace {

TEST(PreloadPaths, NormalizeFoldsDotsAndSlashes) {
  EXPECT_EQ(Normalize("/memkv//cache/./a.npy"), "/memkv/cache/a.npy");
  EXPECT_EQ(Normalize("/memkv/cache/../b"), "/memkv/b");
  EXPECT_EQ(Normalize("/memkv/"), "/memkv");
  EXPECT_EQ(Normalize("/../.."), "/");
  EXPECT_EQ(Normalize("/"), "/");
}

TEST(PreloadPaths, APathBelowAPrefixIsTheKeyBelowIt) {
  const Prefixes p = Prefixes::Parse("/memkv:/scratch/kv/");
  ASSERT_EQ(p.list().size(), 2u);
  auto m = p.Find("/memkv/cache/a.npy");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->key, "cache/a.npy");
  m = p.Find("/scratch/kv/x");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->key, "x");
  m = p.Find("/memkv");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->key, "");
}

TEST(PreloadPaths, NeighboursOfAPrefixAreNotOurs) {
  const Prefixes p = Prefixes::Parse("/memkv");
  EXPECT_FALSE(p.Find("/memkv2/a"));
  EXPECT_FALSE(p.Find("/mem"));
  EXPECT_FALSE(p.Find("/tmp/memkv/a"));
}

TEST(PreloadPaths, RelativeRootAndEmptyPrefixesAreIgnored) {
  EXPECT_TRUE(Prefixes::Parse("").empty());
  EXPECT_TRUE(Prefixes::Parse("relative:/:").empty());
  const Prefixes p = Prefixes::Parse("/a:/a/b");
  ASSERT_EQ(p.list().size(), 2u);
  // The longer prefix wins: its keys are below it.
  EXPECT_EQ(p.Find("/a/b/c")->key, "c");
  EXPECT_EQ(p.Find("/a/c")->key, "c");
}

TEST(PreloadPaths, JoinResolvesRelativeNames) {
  EXPECT_EQ(Join("/memkv/dir", "../x"), "/memkv/x");
  EXPECT_EQ(Join("/home", "/memkv/y"), "/memkv/y");
}

TEST(PreloadPaths, ChildrenOfADirectory) {
  auto c = ChildOf("dir/", "dir/a.npy");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "a.npy");
  EXPECT_FALSE(c->directory);
  c = ChildOf("dir/", "dir/sub/deep/x");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "sub");
  EXPECT_TRUE(c->directory);
  c = ChildOf("dir/", std::string("dir/empty", 9) + '\0');
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "empty");
  EXPECT_TRUE(c->empty_file);
  EXPECT_FALSE(ChildOf("dir/", "dir/"));  // the directory's own marker
  EXPECT_FALSE(ChildOf("dir/", "dirx"));
  c = ChildOf("", "top");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "top");
}

TEST(PreloadPaths, SkipPastIsAboveEveryKeyBelowThePrefix) {
  const std::string skip = SkipPast("dir/sub/", 16);
  EXPECT_EQ(skip.size(), 16u);
  EXPECT_GT(skip, std::string("dir/sub/zzzzzzzz"));
  EXPECT_GT(skip, std::string("dir/sub/\xff\xff"));
  EXPECT_LT(skip, std::string("dir/sub0"));
  EXPECT_LT(skip, std::string("dir/suc"));
}

TEST(PreloadPaths, ParentKeys) {
  EXPECT_EQ(ParentKey("a/b/c"), "a/b");
  EXPECT_EQ(ParentKey("top"), "");
}

}  // namespace
}  // namespace memkv::preload
