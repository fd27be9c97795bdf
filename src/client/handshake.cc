#include "client/handshake.h"
#include <random>
#include "client/error.h"

namespace memkv::client {

Handshake::Handshake(const std::optional<proto::AuthKey>& auth_key) : auth_key_(auth_key) {}

Buffer Handshake::HelloControl() {
  proto::Hello hello;
  hello.nonce = proto::RandomNonce();
  nonce_ = hello.nonce;
  hello_sent_ = true;
  Buffer out;
  proto::Encode(hello, out);
  return out;
}

Status Handshake::Refused(std::string_view step, const proto::ReplyHead& head) {
  refusal_ = std::string(step) + ": " + std::string(proto::StatusName(head.status));
  if (!head.message.empty()) refusal_ += " " + std::string(head.message);
  return errc::attach_refused;
}

Status Handshake::Undecodable(std::string_view step, Bytes control) {
  proto::ReplyHead head;
  if (proto::Decode(control, head) && head.status != proto::StatusCode::kOk) return Refused(step, head);
  return errc::bad_reply;
}

Status Handshake::OnHelloReply(Bytes control) {
  if (!hello_sent_) return errc::bad_reply;  // an answer to nothing
  proto::HelloReply reply;
  if (!proto::Decode(control, reply)) return Undecodable("Hello", control);
  if (reply.head.status != proto::StatusCode::kOk) return Refused("Hello", reply.head);
  if (auth_key_) session_key_ = auth_key_->Session(nonce_, reply.nonce);
  return {};
}

Buffer Handshake::AttachControl(const Offer& offer) {
  std::random_device rd;
  std::mt19937_64 rng((uint64_t{rd()} << 32) ^ rd());
  proto::AttachRequest req;
  for (auto& b : req.client_id) b = static_cast<std::byte>(rng());
  req.rails = proto::kRailTcp | (offer.local ? proto::kRailShm : 0);
  req.host_id = offer.host_id;
  if (!offer.rdma_endpoint.empty() && !offer.local) {
    req.rails |= proto::kRailRdma;
    req.rdma_endpoint = offer.rdma_endpoint;
  }
  if (session_key_) req.proof = proto::AttachProof(*session_key_, req.client_id);
  Buffer out;
  proto::Encode(req, out);
  return out;
}

Result<AttachInfo> Handshake::OnAttachReply(Bytes control) {
  proto::AttachReply reply;
  if (!proto::Decode(control, reply)) return Undecodable("Attach", control).error();
  if (reply.head.status != proto::StatusCode::kOk) return Refused("Attach", reply.head).error();
  AttachInfo info;
  info.version = reply.version;
  info.session_id = reply.session_id;
  info.rails = reply.rails;
  info.host_id = std::string(reply.host_id);
  info.unix_socket = std::string(reply.unix_socket);
  info.max_value_size = reply.max_value_size;
  info.max_batch_entries = reply.max_batch_entries;
  info.max_inflight = reply.max_inflight;
  info.features = reply.features;
  info.rdma_endpoint = std::string(reply.rdma_endpoint);
  return info;
}

}  // namespace memkv::client
