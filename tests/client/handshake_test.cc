// The client's side of Hello and Attach on bytes alone (client/handshake.h):
// what it sends, and what it makes of the server's answers, good and bad.
#include "client/handshake.h"

#include <gtest/gtest.h>

#include "client/error.h"

namespace memkv::client {
namespace {

proto::AuthKey Key() { return *proto::AuthKey::FromHex(std::string(64, 'a')); }

proto::Hello SentHello(Handshake& h) {
  const Buffer control = h.HelloControl();
  proto::Hello hello;
  EXPECT_TRUE(proto::Decode(control, hello));
  return hello;
}

Buffer HelloReplyControl(const proto::Nonce& server_nonce) {
  proto::HelloReply reply;
  reply.nonce = server_nonce;
  Buffer out;
  proto::Encode(reply, out);
  return out;
}

proto::Nonce Nonce(uint8_t fill) {
  proto::Nonce n;
  n.fill(std::byte{fill});
  return n;
}

TEST(HandshakeTest, EveryHelloCarriesAFreshNonce) {
  Handshake a(std::nullopt), b(std::nullopt);
  const proto::Hello first = SentHello(a);
  const proto::Hello second = SentHello(b);
  EXPECT_NE(first.nonce, second.nonce);
  EXPECT_EQ(first.max_version, proto::kProtocolVersion);
}

TEST(HandshakeTest, TheSessionKeyIsMadeFromBothNonces) {
  Handshake h(Key());
  const proto::Hello hello = SentHello(h);
  EXPECT_EQ(h.session_key(), nullptr);  // not before the server's nonce
  ASSERT_TRUE(h.OnHelloReply(HelloReplyControl(Nonce(7))));
  ASSERT_NE(h.session_key(), nullptr);
  EXPECT_EQ(h.session_key()->ToHex(), Key().Session(hello.nonce, Nonce(7)).ToHex());
  EXPECT_NE(h.session_key()->ToHex(), Key().Session(hello.nonce, Nonce(8)).ToHex());
}

TEST(HandshakeTest, WithoutAKeyThereIsNoSessionKeyAndNoProof) {
  Handshake h(std::nullopt);
  SentHello(h);
  ASSERT_TRUE(h.OnHelloReply(HelloReplyControl(Nonce(1))));
  EXPECT_EQ(h.session_key(), nullptr);
  const Buffer control = h.AttachControl({.host_id = "gpu-7"});
  proto::AttachRequest req;
  ASSERT_TRUE(proto::Decode(control, req));
  EXPECT_EQ(req.proof, proto::Tag{});
  EXPECT_EQ(req.host_id, "gpu-7");
}

TEST(HandshakeTest, AReplyToAHelloNeverSentIsABadReply) {
  Handshake h(Key());
  EXPECT_EQ(h.OnHelloReply(HelloReplyControl(Nonce(1))).error(), errc::bad_reply);
  EXPECT_EQ(h.session_key(), nullptr);
}

TEST(HandshakeTest, ARefusalIsAttachRefusedAndSaysWhatTheServerSaid) {
  Handshake h(Key());
  SentHello(h);
  proto::ReplyHead head{proto::StatusCode::kTooManySessions, "1024 sessions"};
  Buffer control;
  proto::Encode(head, control);
  EXPECT_EQ(h.OnHelloReply(control).error(), errc::attach_refused);
  EXPECT_NE(h.refusal().find("Hello"), std::string::npos) << h.refusal();
  EXPECT_NE(h.refusal().find("1024 sessions"), std::string::npos) << h.refusal();
  EXPECT_EQ(h.session_key(), nullptr);
}

TEST(HandshakeTest, GarbageIsABadReplyNotARefusal) {
  Handshake h(Key());
  SentHello(h);
  const Buffer junk(5, std::byte{0xee});
  EXPECT_EQ(h.OnHelloReply(junk).error(), errc::bad_reply);
  EXPECT_EQ(h.OnAttachReply(junk).error(), errc::bad_reply);
  EXPECT_TRUE(h.refusal().empty());
}

TEST(HandshakeTest, AttachOffersTheRailsOfItsWayIn) {
  Handshake h(std::nullopt);
  SentHello(h);
  ASSERT_TRUE(h.OnHelloReply(HelloReplyControl(Nonce(1))));
  struct Case {
    Handshake::Offer offer;
    uint32_t rails;
    std::string_view endpoint;
  } cases[] = {
      {{.host_id = "h"}, proto::kRailTcp, ""},
      {{.host_id = "h", .local = true}, proto::kRailTcp | proto::kRailShm, ""},
      {{.host_id = "h", .rdma_endpoint = "ofi|abc"}, proto::kRailTcp | proto::kRailRdma, "ofi|abc"},
      // Over the Unix socket the rdma rail is never offered.
      {{.host_id = "h", .local = true, .rdma_endpoint = "ofi|abc"}, proto::kRailTcp | proto::kRailShm, ""},
  };
  for (const Case& c : cases) {
    const Buffer control = h.AttachControl(c.offer);
    proto::AttachRequest req;
    ASSERT_TRUE(proto::Decode(control, req));
    EXPECT_EQ(req.rails, c.rails);
    EXPECT_EQ(req.rdma_endpoint, c.endpoint);
  }
}

TEST(HandshakeTest, TheAttachProofBindsTheClientIdToTheSessionKey) {
  Handshake h(Key());
  const proto::Hello hello = SentHello(h);
  ASSERT_TRUE(h.OnHelloReply(HelloReplyControl(Nonce(3))));
  const Buffer first = h.AttachControl({.host_id = "h"});
  const Buffer second = h.AttachControl({.host_id = "h"});
  proto::AttachRequest a, b;
  ASSERT_TRUE(proto::Decode(first, a));
  ASSERT_TRUE(proto::Decode(second, b));
  EXPECT_NE(a.client_id, b.client_id);
  const proto::AuthKey session = Key().Session(hello.nonce, Nonce(3));
  EXPECT_EQ(a.proof, proto::AttachProof(session, a.client_id));
  EXPECT_EQ(b.proof, proto::AttachProof(session, b.client_id));
  EXPECT_NE(a.proof, proto::AttachProof(Key().Session(hello.nonce, Nonce(4)), a.client_id));
}

TEST(HandshakeTest, TheAttachReplyBecomesAttachInfoThatOwnsItsStrings) {
  Handshake h(std::nullopt);
  SentHello(h);
  ASSERT_TRUE(h.OnHelloReply(HelloReplyControl(Nonce(1))));
  Result<AttachInfo> info = errc::bad_reply;
  {
    std::string host = "store-3", sock = "/run/memkv/memkv.sock", rdma = "ofi|xyz";
    proto::AttachReply reply;
    reply.session_id = 42;
    reply.rails = proto::kRailTcp | proto::kRailShm;
    reply.host_id = host;
    reply.unix_socket = sock;
    reply.rdma_endpoint = rdma;
    reply.max_value_size = 1 << 30;
    reply.max_batch_entries = 8192;
    reply.max_inflight = 64;
    reply.features = proto::kFeaturePageSums | proto::kFeatureRename;
    Buffer control;
    proto::Encode(reply, control);
    info = h.OnAttachReply(control);
    control.assign(control.size(), std::byte{0});  // the reply's bytes are gone
  }
  ASSERT_TRUE(info);
  EXPECT_EQ(info->session_id, 42u);
  EXPECT_EQ(info->rails, proto::kRailTcp | proto::kRailShm);
  EXPECT_EQ(info->host_id, "store-3");
  EXPECT_EQ(info->unix_socket, "/run/memkv/memkv.sock");
  EXPECT_EQ(info->rdma_endpoint, "ofi|xyz");
  EXPECT_EQ(info->max_value_size, uint64_t{1} << 30);
  EXPECT_EQ(info->max_batch_entries, 8192u);
  EXPECT_EQ(info->max_inflight, 64u);
  EXPECT_EQ(info->features, proto::kFeaturePageSums | proto::kFeatureRename);
}

TEST(HandshakeTest, AnAttachRefusalNamesAttach) {
  Handshake h(Key());
  SentHello(h);
  ASSERT_TRUE(h.OnHelloReply(HelloReplyControl(Nonce(1))));
  proto::AttachReply reply;
  reply.head = {proto::StatusCode::kUnauthorized, "bad proof"};
  Buffer control;
  proto::Encode(reply, control);
  EXPECT_EQ(h.OnAttachReply(control).error(), errc::attach_refused);
  EXPECT_EQ(h.refusal().rfind("Attach: ", 0), 0u) << h.refusal();
  EXPECT_NE(h.refusal().find("bad proof"), std::string::npos) << h.refusal();
}

}  // namespace
}  // namespace memkv::client
