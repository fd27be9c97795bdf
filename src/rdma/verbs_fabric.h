#pragma once
// The `verbs` provider of rdma::Fabric (fabric_api.h): rdma-core RC queue
// pairs, one per peer, over one VerbsDevice (verbs_setup.h) per Fabric, so
// one protection domain, one completion queue and one completion channel.
//
//   Register         VerbsDevice::Register (ibv_reg_mr, or ibv_reg_dmabuf_mr
//                    for GPU memory); the region's key is its 32-bit rkey,
//                    and peers address it virtually (the pointer itself).
//   AcceptPeer       (server) an RC QP connected RESET->INIT->RTR->RTS to
//                    the client's endpoint blob; answers with its own blob.
//   OfferPeer        (client) an RC QP and its blob; CompletePeer connects
//                    it to the server's answer.
//   Write / Read     ibv_post_send RDMA_WRITE / RDMA_READ, signaled, wr_id =
//                    the operation; at most min(max_inflight_per_peer,
//                    max_send_wr) posted per peer (TransferQueue), and at
//                    most the CQ's depth in all.
//   completions      the channel's fd awaited on the loop; each wake-up
//                    takes and acknowledges the events, re-arms
//                    (ibv_req_notify_cq), then drains ibv_poll_cq; each
//                    completion resumes its operation's coroutine:
//                    IBV_WC_SUCCESS ok, IBV_WC_REM_ACCESS_ERR
//                    errc::remote_access, any other status an error of
//                    wc_category() (ibv_wc_status_str).
//   RemovePeer       waiting operations fail; the QP goes to ERR so that
//                    posted ones flush; once none is posted it is destroyed.
//
// An error completion moves an RC QP to ERR (the verbs rule): later
// operations to that peer complete with IBV_WC_WR_FLUSH_ERR; the session
// must attach again for a new QP.
//
// RC only: DC (mlx5dv DCT/DCI, verbs_setup.h) is not wired into the Fabric.
// None of this has run on an RDMA NIC; the tests drive it over
// RecordingVerbs' loopback (docs/rdma.md).

#include <memory>
#include <string>

#include "common/result.h"
#include "rdma/fabric_api.h"
#include "rdma/verbs_calls.h"
#include "rdma/verbs_setup.h"

namespace memkv::rdma {

// The verbs options of a FabricOptions: `domain` names the device, with its
// port and GID index where they are not 1 and 0 (rdma.device:
// "mlx5_0", "mlx5_0:2", "mlx5_0:1:3"; RoCE v2 usually sits at GID index 3);
// the in-flight bound sizes the send queues. errc::bad_option, with `why`
// naming rdma.device, for a port or index that is not a number in range.
Result<VerbsOptions> VerbsOptionsFrom(const FabricOptions& options, std::string* why);

// Opens a verbs Fabric over `calls` (RealVerbs() in production), its
// completions awaited on `loop`. On failure `why` names rdma.device and the
// call ("rdma.device: mlx5_9 not found; devices found: mlx5_0").
Result<std::unique_ptr<Fabric>> OpenVerbsFabric(VerbsCalls& calls, const VerbsOptions& verbs,
                                                const FabricOptions& options,
                                                const boost::asio::any_io_executor& loop,
                                                std::string* why = nullptr);

// Work-completion statuses (enum ibv_wc_status), printed with ibv_wc_status_str.
const boost::system::error_category& wc_category();

}  // namespace memkv::rdma
