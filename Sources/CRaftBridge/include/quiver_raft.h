// A thread-safe face for libraft (canonical/raft) and its libuv I/O.
//
// libraft must only be called on the thread that runs its libuv loop. This bridge owns that thread:
// every qr_* function below may be called from any thread; it queues the request and wakes the loop
// with uv_async_send. Callbacks into the host run on the loop thread and must return quickly.
//
// Raft's streams do not use TCP sockets of their own. The bridge's transport hands the host one end
// of a socketpair per connection (qr_callbacks.connect) and takes incoming ones (qr_accept); the host
// carries the bytes over its own p2p channel.
//
// Entries are framed as [u32 little-endian length][payload][zero padding to a multiple of 8]:
// libraft requires entry buffers whose length is a multiple of 8.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct qr_node qr_node;

enum { QR_UNAVAILABLE = 0, QR_FOLLOWER = 1, QR_CANDIDATE = 2, QR_LEADER = 3 };
enum { QR_STANDBY = 0, QR_VOTER = 1, QR_SPARE = 2 };
#define QR_MAX_SERVERS 64
#define QR_ADDRESS_MAX 256

typedef struct qr_server_info {
    uint64_t id;
    int role;
    char address[QR_ADDRESS_MAX];
} qr_server_info;

typedef struct qr_status {
    int state;
    uint64_t id;
    uint64_t leader_id;
    uint64_t term;
    uint64_t voted_for;
    uint64_t commit_index;
    uint64_t last_applied;
    uint64_t last_index;
    uint64_t snapshot_index;
    uint64_t loop_iterations;  // grows while the loop thread is alive
    unsigned n_servers;
    qr_server_info servers[QR_MAX_SERVERS];
    int stopped;
} qr_status;

typedef struct qr_callbacks {
    void *context;
    // A committed command, in log order; `index` is its log index.
    void (*apply)(void *context, uint64_t index, const void *data, size_t len);
    // Serialises the state machine: *data must come from malloc (the bridge frees it).
    int (*snapshot)(void *context, void **data, size_t *len);
    // Replaces the state machine with a snapshot.
    int (*restore)(void *context, const void *data, size_t len);
    // Raft wants a stream to server `id` at `address`; the host owns `fd` and bridges it (or closes it).
    void (*connect)(void *context, uint64_t id, const char *address, int fd);
    // A request made with `token` finished. status 0 is success, else a RAFT_* code; for proposals
    // `index` is the entry's log index.
    void (*completed)(void *context, uint64_t token, int status, uint64_t index);
} qr_callbacks;

typedef struct qr_options {
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    unsigned connect_retry_delay_ms;
} qr_options;

// Creates a node on `dir` (libraft's data directory, which must exist). Nothing runs yet.
// Returns NULL and fills `err` on failure.
qr_node *qr_create(const char *dir, uint64_t id, const char *address, qr_callbacks callbacks,
                   qr_options options, char *err, size_t err_len);

// Before qr_start: makes this server the only voter of a new cluster. Returns 0, or
// RAFT_CANTBOOTSTRAP (10) when the directory already holds state, or another RAFT_* code.
int qr_bootstrap(qr_node *node, char *err, size_t err_len);

// Before qr_start, on a stopped cluster: forces a configuration with this server as its only voter
// (libraft's raft_recover), for re-founding a cluster from one peer's state.
int qr_recover_single(qr_node *node, char *err, size_t err_len);

// Loads the persisted state and starts the loop thread.
int qr_start(qr_node *node, char *err, size_t err_len);

// Asynchronous requests; each ends with callbacks.completed(token, …).
void qr_propose(qr_node *node, uint64_t token, const void *data, size_t len);
void qr_add(qr_node *node, uint64_t token, uint64_t id, const char *address);
void qr_assign(qr_node *node, uint64_t token, uint64_t id, int role);
void qr_remove(qr_node *node, uint64_t token, uint64_t id);
void qr_barrier(qr_node *node, uint64_t token);

// An incoming raft stream from server `id` at `address`; the bridge takes ownership of `fd`.
void qr_accept(qr_node *node, uint64_t id, const char *address, int fd);

// A consistent copy of the node's state (refreshed by the loop every few milliseconds).
void qr_get_status(qr_node *node, qr_status *out);

// Closes raft, stops the loop thread and frees the node. Pending requests complete with RAFT_SHUTDOWN.
void qr_destroy(qr_node *node);

const char *qr_strerror(int code);

#ifdef __cplusplus
}
#endif
