#pragma once
// Handshake: the client's side of a connection's start (docs/wire-protocol.md,
// "Hello" and "Attach"), without a socket: the control payload of each
// request it sends, and what it makes of each reply. Connection
// (client/connection.cc) moves the frames; this decides what is in them,
// so the protocol's rules are tested on bytes alone
// (tests/client/handshake_test.cc).
//
//   Handshake h(auth_key);
//   send Hello(h.HelloControl());          h.OnHelloReply(reply control)
//   tag every later frame with h.session_key()
//   send Attach(h.AttachControl(...));     h.OnAttachReply(reply control) -> AttachInfo
#include <optional>
#include <string>
#include <string_view>
#include "client/connection.h"
#include "common/bytes.h"
#include "common/result.h"
#include "proto/auth.h"
#include "proto/messages.h"

namespace memkv::client {

class Handshake {
 public:
  // `auth_key`: the server's shared key, or none for a server without auth.
  explicit Handshake(const std::optional<proto::AuthKey>& auth_key);

  // Hello's control payload, with a fresh random nonce.
  Buffer HelloControl();
  // The server's answer to Hello. Ok: the session key (with an auth key)
  // is made from both nonces. A refusal is errc::attach_refused (refusal()
  // says what the server said); anything else undecodable, errc::bad_reply.
  Status OnHelloReply(Bytes control);
  // The key every frame after Hello is tagged with; null without auth.
  const proto::AuthKey* session_key() const { return session_key_ ? &*session_key_ : nullptr; }

  // What Attach offers. `local`: over the server's Unix socket (offers shm);
  // `rdma_endpoint`: "provider|address" of a peer offered for the rdma rail,
  // or empty (never offered over the Unix socket).
  struct Offer {
    std::string_view host_id;
    bool local = false;
    std::string_view rdma_endpoint;
  };
  // Attach's control payload: a random client id, the rails of `offer`
  // and, with a key, the proof that binds the id to the session key.
  Buffer AttachControl(const Offer& offer);
  // The server's answer to Attach, as an AttachInfo (owning its strings).
  // Errors as OnHelloReply's.
  Result<AttachInfo> OnAttachReply(Bytes control);

  // The step and the server's words of the last refusal ("Hello: 
  // Unauthorized: ..."), for the log line that names the server.
  const std::string& refusal() const { return refusal_; }

 private:
  // A reply of `step` that did not decode as its message: a bare ReplyHead
  // with an error status is a refusal, anything else bad_reply.
  Status Undecodable(std::string_view step, Bytes control);
  Status Refused(std::string_view step, const proto::ReplyHead& head);

  const std::optional<proto::AuthKey> auth_key_;
  std::optional<proto::AuthKey> session_key_;
  proto::Nonce nonce_{};
  bool hello_sent_ = false;
  std::string refusal_;
};

}  // namespace memkv::client
