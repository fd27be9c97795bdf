// Writes one valid frame of each message into a directory: the seed corpus
// of decode_fuzz. Usage: make_seeds DIR

#include <cstdio>
#include <fstream>
#include <string>

#include "common/checksum.h"
#include "proto/messages.h"

using namespace memkv::proto;

namespace {

void Write(const std::string& dir, const char* name, Opcode op, bool response,
           const Buffer& control, Bytes data = {}, const AuthKey* key = nullptr) {
  Buffer frame;
  FrameHeader h;
  h.opcode = op;
  h.request_id = 1;
  h.flags = response ? kFlagResponse : 0;
  AppendFrame(frame, h, control, data, key);
  std::ofstream(dir + "/" + name, std::ios::binary)
      .write(reinterpret_cast<const char*>(frame.data()), static_cast<long>(frame.size()));
}

Bytes AsBytes(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const AuthKey key =
      AuthKey::FromHex("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff").value();
  Buffer b;

  AttachRequest ar;
  ar.host_id = "host";
  ar.rails = kRailTcp | kRailShm;
  ar.proof = AttachProof(key, ar.client_id);
  Encode(ar, b);
  Write(dir, "attach", Opcode::kAttach, false, b, {}, &key);

  b.clear();
  AttachReply rep;
  rep.session_id = 3;
  rep.unix_socket = "/tmp/memkv.sock";
  rep.max_value_size = 1 << 30;
  Encode(rep, b);
  Write(dir, "attach_reply", Opcode::kAttach, true, b);

  b.clear();
  BatchReadRequest rr;
  rr.batch = {3, 0, 3};
  rr.entries = {{"a", 0, 0, {}}, {"bb", 8, 16, {LocationKind::kShm, 1, 0, 16}},
                {"ccc", 0, 4, {LocationKind::kRdma, 9, 4096, 4}}};
  Encode(rr, b);
  Write(dir, "read", Opcode::kBatchRead, false, b);

  b.clear();
  const std::string v = "valuevalue";
  BatchReadReply rrep;
  rrep.batch = {2, 0, 2};
  rrep.results = {{StatusCode::kOk, Delivery::kInline, 10, 10, memkv::Xxh3(v)},
                  {StatusCode::kNotFound, Delivery::kNone, 0, 0, 0}};
  Encode(rrep, b);
  Write(dir, "read_reply", Opcode::kBatchRead, true, b, AsBytes(v));

  b.clear();
  BatchWriteRequest wr;
  wr.batch = {2, 0, 2};
  wr.entries = {{"k", 10, memkv::Xxh3(v), {}}, {"big", 1 << 30, 5, {LocationKind::kStream}}};
  Encode(wr, b);
  Write(dir, "write", Opcode::kBatchWrite, false, b, AsBytes(v));

  b.clear();
  StatusReply sr;
  sr.batch = {2, 0, 2};
  sr.statuses = {StatusCode::kOk, StatusCode::kTooLarge};
  Encode(sr, b);
  Write(dir, "write_reply", Opcode::kBatchWrite, true, b);

  b.clear();
  Encode(KeysRequest{{2, 0, 2}, {"x", "yy"}}, b);
  Write(dir, "exists", Opcode::kExists, false, b);
  Write(dir, "delete", Opcode::kDelete, false, b);

  b.clear();
  ExistsReply er;
  er.batch = {1, 0, 1};
  er.results = {{StatusCode::kOk, 4096}};
  Encode(er, b);
  Write(dir, "exists_reply", Opcode::kExists, true, b);

  b.clear();
  Encode(Ping{42}, b);
  Write(dir, "ping", Opcode::kPing, false, b);

  b.clear();
  Encode(ChunkHeader{0, 0, 0, false}, b);
  Write(dir, "chunk", Opcode::kWriteChunk, false, b, AsBytes(v));

  b.clear();
  Encode(ChunkHeader{0, 3, 24 << 20, true, memkv::Xxh3(v)}, b);
  Write(dir, "read_chunk_last", Opcode::kReadChunk, true, b, AsBytes(v));

  b.clear();
  Encode(PlacedStep{0, 2, 2 << 20, 1 << 20, true}, b);
  Write(dir, "read_placed_last", Opcode::kReadPlaced, true, b);

  b.clear();
  Encode(RegisterRegion{1, 1 << 20}, b);
  Write(dir, "register", Opcode::kRegisterRegion, false, b);

  b.clear();
  Encode(ReleaseRegion{1}, b);
  Write(dir, "release", Opcode::kReleaseRegion, false, b);

  b.clear();
  Encode(ReplyHead{StatusCode::kBusy, "slow down"}, b);
  Write(dir, "error_reply", Opcode::kDetach, true, b);

  b.clear();
  Hello hello;
  hello.nonce[0] = std::byte{1};
  Encode(hello, b);
  Write(dir, "hello", Opcode::kHello, false, b);

  b.clear();
  Encode(HelloReply{}, b);
  Write(dir, "hello_reply", Opcode::kHello, true, b);

  b.clear();
  Encode(ListRequest{"layer/", "layer/7", 100}, b);
  Write(dir, "list", Opcode::kList, false, b);

  b.clear();
  ListReply lr;
  lr.entries = {{"layer/8", 4096, 3}, {"layer/9", 1, 4}};
  lr.cursor = "layer/9";
  Encode(lr, b);
  Write(dir, "list_reply", Opcode::kList, true, b);

  b.clear();
  Encode(CapacityReply{{}, 1 << 30, 1 << 20, 12, 1 << 30}, b);
  Write(dir, "capacity_reply", Opcode::kCapacity, true, b);

  b.clear();
  RenameRequest rn;
  rn.batch = {2, 0, 2};
  rn.entries = {{"tmp/a", "a"}, {"tmp/b", "b"}};
  Encode(rn, b);
  Write(dir, "rename", Opcode::kRename, false, b);
  return 0;
}
