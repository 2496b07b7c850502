#define _GNU_SOURCE
#include "quiver_raft.h"

#include <dirent.h>
#include <errno.h>
#include <lz4frame.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

enum { REQ_PROPOSE, REQ_ADD, REQ_ASSIGN, REQ_REMOVE, REQ_BARRIER, REQ_ACCEPT, REQ_STOP };

struct request {
    int kind;
    uint64_t token;
    uint64_t id;
    int role;
    int fd;
    char *address;
    struct raft_buffer buf;
    qr_node *node;
    union {
        struct raft_apply apply;
        struct raft_change change;
        struct raft_barrier barrier;
    } u;
    struct request *next;
};

// A connect that completes on the next loop turn (libraft expects its callback after connect()
// returns).
struct pending_connect {
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    uv_pipe_t *pipe;
    struct pending_connect *next;
};

struct qr_node {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t status_timer;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    qr_callbacks cb;
    qr_options options;
    pthread_t thread;
    int thread_started;

    pthread_mutex_t lock;  // guards queue and status
    struct request *queue_head, *queue_tail;
    qr_status status;

    // loop thread only
    raft_uv_accept_cb accept_cb;
    struct pending_connect *connects;
    raft_uv_transport_close_cb transport_close_cb;
    int closing;
    uint64_t iterations;
    char dir[1024];
};

static void set_err(char *err, size_t len, const char *fmt, const char *detail, int code) {
    if (err && len) snprintf(err, len, fmt, detail ? detail : "", code);
}

const char *qr_strerror(int code) { return raft_strerror(code); }

// MARK: status

static void refresh_status(qr_node *n) {
    struct raft *r = &n->raft;
    qr_status s;
    memset(&s, 0, sizeof s);
    s.state = raft_state(r);
    s.id = r->id;
    raft_id leader = 0;
    const char *leader_address = NULL;
    raft_leader(r, &leader, &leader_address);
    s.leader_id = leader;
    s.term = r->current_term;
    s.voted_for = r->voted_for;
    s.commit_index = r->commit_index;
    s.last_applied = r->last_applied;
    s.last_index = raft_last_index(r);
    s.snapshot_index = r->log.snapshot.last_index;
    s.loop_iterations = ++n->iterations;
    s.n_servers = r->configuration.n < QR_MAX_SERVERS ? r->configuration.n : QR_MAX_SERVERS;
    for (unsigned i = 0; i < s.n_servers; i++) {
        s.servers[i].id = r->configuration.servers[i].id;
        s.servers[i].role = r->configuration.servers[i].role;
        snprintf(s.servers[i].address, QR_ADDRESS_MAX, "%s", r->configuration.servers[i].address);
    }
    s.stopped = n->closing;
    pthread_mutex_lock(&n->lock);
    n->status = s;
    pthread_mutex_unlock(&n->lock);
}

void qr_get_status(qr_node *n, qr_status *out) {
    pthread_mutex_lock(&n->lock);
    *out = n->status;
    pthread_mutex_unlock(&n->lock);
}

static void on_status_timer(uv_timer_t *t) { refresh_status(t->data); }

// MARK: state machine

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
    qr_node *n = fsm->data;
    *result = NULL;
    if (buf->len < 4) return RAFT_MALFORMED;
    uint32_t len;
    memcpy(&len, buf->base, 4);
    if ((size_t)len + 4 > buf->len) return RAFT_MALFORMED;
    // libraft applies entries in order and sets last_applied after each, so this is the index.
    n->cb.apply(n->cb.context, n->raft.last_applied + 1, (const char *)buf->base + 4, len);
    return 0;
}

static size_t padded(size_t len) { return (len + 4 + 7) & ~(size_t)7; }

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
    qr_node *n = fsm->data;
    void *data = NULL;
    size_t len = 0;
    int rv = n->cb.snapshot(n->cb.context, &data, &len);
    if (rv != 0) return rv;
    struct raft_buffer *out = raft_malloc(sizeof *out);
    void *base = raft_calloc(1, padded(len));
    if (!out || !base) {
        free(data);
        raft_free(out);
        raft_free(base);
        return RAFT_NOMEM;
    }
    uint32_t l = (uint32_t)len;
    memcpy(base, &l, 4);
    if (len) memcpy((char *)base + 4, data, len);
    free(data);
    out[0].base = base;
    out[0].len = padded(len);
    *bufs = out;
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
    qr_node *n = fsm->data;
    if (buf->len < 4) return RAFT_MALFORMED;
    uint32_t len;
    memcpy(&len, buf->base, 4);
    if ((size_t)len + 4 > buf->len) return RAFT_MALFORMED;
    int rv = n->cb.restore(n->cb.context, (const char *)buf->base + 4, len);
    if (rv != 0) return rv;
    raft_free(buf->base);  // on success the state machine owns the buffer
    return 0;
}

// MARK: transport (socketpairs handed to the host)

static void free_handle(uv_handle_t *h) { raft_free(h); }

static uv_pipe_t *open_pipe(qr_node *n, int fd) {
    uv_pipe_t *pipe = raft_malloc(sizeof *pipe);
    if (!pipe) return NULL;
    if (uv_pipe_init(&n->loop, pipe, 0) != 0) {
        raft_free(pipe);
        return NULL;
    }
    if (uv_pipe_open(pipe, fd) != 0) {
        uv_close((uv_handle_t *)pipe, free_handle);
        return NULL;
    }
    return pipe;
}

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address) {
    (void)t; (void)id; (void)address;
    return 0;
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb) {
    qr_node *n = t->impl;
    n->accept_cb = cb;
    return 0;
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                     const char *address, raft_uv_connect_cb cb) {
    qr_node *n = t->impl;
    if (n->closing) return RAFT_CANCELED;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return RAFT_NOCONNECTION;
    uv_pipe_t *pipe = open_pipe(n, sv[0]);
    if (!pipe) {
        close(sv[0]);
        close(sv[1]);
        return RAFT_NOCONNECTION;
    }
    struct pending_connect *p = malloc(sizeof *p);
    if (!p) {
        uv_close((uv_handle_t *)pipe, free_handle);
        close(sv[1]);
        return RAFT_NOMEM;
    }
    p->req = req;
    p->cb = cb;
    p->pipe = pipe;
    p->next = n->connects;
    n->connects = p;
    n->cb.connect(n->cb.context, id, address, sv[1]);
    uv_async_send(&n->wake);
    return 0;
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb) {
    qr_node *n = t->impl;
    n->accept_cb = NULL;
    struct pending_connect *p = n->connects;
    n->connects = NULL;
    while (p) {
        struct pending_connect *next = p->next;
        uv_close((uv_handle_t *)p->pipe, free_handle);
        p->cb(p->req, NULL, RAFT_CANCELED);
        free(p);
        p = next;
    }
    n->transport_close_cb = cb;
    uv_async_send(&n->wake);
}

// MARK: requests

static void complete(struct request *q, int status, uint64_t index) {
    qr_node *n = q->node;
    refresh_status(n);
    n->cb.completed(n->cb.context, q->token, status, index);
    free(q->address);
    free(q);
}

static void on_applied(struct raft_apply *req, int status, void *result) {
    (void)result;
    struct request *q = req->data;
    complete(q, status, req->index);
}

static void on_changed(struct raft_change *req, int status) { complete(req->data, status, 0); }

static void on_barrier(struct raft_barrier *req, int status) {
    struct request *q = req->data;
    complete(q, status, req->index);
}

static void on_raft_closed(struct raft *r) {
    qr_node *n = r->data;
    raft_uv_close(&n->io);
    uv_close((uv_handle_t *)&n->status_timer, NULL);
    uv_close((uv_handle_t *)&n->wake, NULL);
}

static void run_request(qr_node *n, struct request *q) {
    if (n->closing && q->kind != REQ_STOP) {
        if (q->kind == REQ_ACCEPT) {
            close(q->fd);
            free(q->address);
            free(q);
            return;
        }
        complete(q, RAFT_SHUTDOWN, 0);
        return;
    }
    int rv = 0;
    switch (q->kind) {
    case REQ_PROPOSE:
        q->u.apply.data = q;
        rv = raft_apply(&n->raft, &q->u.apply, &q->buf, 1, on_applied);
        if (rv != 0) raft_free(q->buf.base);
        break;
    case REQ_ADD:
        q->u.change.data = q;
        rv = raft_add(&n->raft, &q->u.change, q->id, q->address, on_changed);
        break;
    case REQ_ASSIGN:
        q->u.change.data = q;
        rv = raft_assign(&n->raft, &q->u.change, q->id, q->role, on_changed);
        break;
    case REQ_REMOVE:
        q->u.change.data = q;
        rv = raft_remove(&n->raft, &q->u.change, q->id, on_changed);
        break;
    case REQ_BARRIER:
        q->u.barrier.data = q;
        rv = raft_barrier(&n->raft, &q->u.barrier, on_barrier);
        break;
    case REQ_ACCEPT: {
        uv_pipe_t *pipe = n->accept_cb ? open_pipe(n, q->fd) : NULL;
        if (pipe) {
            n->accept_cb(&n->transport, q->id, q->address, (uv_stream_t *)pipe);
        } else {
            close(q->fd);
        }
        free(q->address);
        free(q);
        return;
    }
    case REQ_STOP:
        free(q);
        if (!n->closing) {
            n->closing = 1;
            uv_timer_stop(&n->status_timer);
            refresh_status(n);
            raft_close(&n->raft, on_raft_closed);
        }
        return;
    }
    if (rv != 0) complete(q, rv, 0);
}

static void on_wake(uv_async_t *async) {
    qr_node *n = async->data;
    struct pending_connect *p = n->connects;
    n->connects = NULL;
    while (p) {
        struct pending_connect *next = p->next;
        p->cb(p->req, (uv_stream_t *)p->pipe, 0);
        free(p);
        p = next;
    }
    if (n->transport_close_cb) {
        raft_uv_transport_close_cb cb = n->transport_close_cb;
        n->transport_close_cb = NULL;
        cb(&n->transport);
    }
    pthread_mutex_lock(&n->lock);
    struct request *q = n->queue_head;
    n->queue_head = n->queue_tail = NULL;
    pthread_mutex_unlock(&n->lock);
    while (q) {
        struct request *next = q->next;
        run_request(n, q);
        q = next;
    }
}

static void enqueue(qr_node *n, struct request *q) {
    q->node = n;
    q->next = NULL;
    pthread_mutex_lock(&n->lock);
    if (n->queue_tail) {
        n->queue_tail->next = q;
    } else {
        n->queue_head = q;
    }
    n->queue_tail = q;
    pthread_mutex_unlock(&n->lock);
    uv_async_send(&n->wake);
}

static struct request *new_request(int kind, uint64_t token) {
    struct request *q = calloc(1, sizeof *q);
    if (!q) abort();
    q->kind = kind;
    q->token = token;
    q->fd = -1;
    return q;
}

void qr_propose(qr_node *n, uint64_t token, const void *data, size_t len) {
    struct request *q = new_request(REQ_PROPOSE, token);
    q->buf.len = padded(len);
    q->buf.base = raft_calloc(1, q->buf.len);
    if (!q->buf.base) abort();
    uint32_t l = (uint32_t)len;
    memcpy(q->buf.base, &l, 4);
    if (len) memcpy((char *)q->buf.base + 4, data, len);
    enqueue(n, q);
}

void qr_add(qr_node *n, uint64_t token, uint64_t id, const char *address) {
    struct request *q = new_request(REQ_ADD, token);
    q->id = id;
    q->address = strdup(address);
    enqueue(n, q);
}

void qr_assign(qr_node *n, uint64_t token, uint64_t id, int role) {
    struct request *q = new_request(REQ_ASSIGN, token);
    q->id = id;
    q->role = role;
    enqueue(n, q);
}

void qr_remove(qr_node *n, uint64_t token, uint64_t id) {
    struct request *q = new_request(REQ_REMOVE, token);
    q->id = id;
    enqueue(n, q);
}

void qr_barrier(qr_node *n, uint64_t token) { enqueue(n, new_request(REQ_BARRIER, token)); }

void qr_accept(qr_node *n, uint64_t id, const char *address, int fd) {
    struct request *q = new_request(REQ_ACCEPT, 0);
    q->id = id;
    q->address = strdup(address);
    q->fd = fd;
    enqueue(n, q);
}

// MARK: life cycle

qr_node *qr_create(const char *dir, uint64_t id, const char *address, qr_callbacks callbacks,
                   qr_options options, char *err, size_t err_len) {
    // A peer that goes away closes its end of a stream; libuv then writes to a closed socket.
    signal(SIGPIPE, SIG_IGN);
    qr_node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->cb = callbacks;
    n->options = options;
    snprintf(n->dir, sizeof n->dir, "%s", dir);
    pthread_mutex_init(&n->lock, NULL);
    int rv = uv_loop_init(&n->loop);
    if (rv != 0) {
        set_err(err, err_len, "uv_loop_init failed%s: %d", NULL, rv);
        free(n);
        return NULL;
    }
    uv_async_init(&n->loop, &n->wake, on_wake);
    n->wake.data = n;
    uv_timer_init(&n->loop, &n->status_timer);
    n->status_timer.data = n;

    n->transport.impl = n;  // libraft uses `data` itself
    n->transport.init = t_init;
    n->transport.listen = t_listen;
    n->transport.connect = t_connect;
    n->transport.close = t_close;

    rv = raft_uv_init(&n->io, &n->loop, n->dir, &n->transport);
    if (rv != 0) {
        set_err(err, err_len, "cannot open the raft directory: %s (%d)", n->io.errmsg, rv);
        goto fail_loop;
    }
    raft_uv_set_connect_retry_delay(&n->io, options.connect_retry_delay_ms ? options.connect_retry_delay_ms : 500);
    // Snapshots are small (the catalogue), and libraft's decompression can spin on damaged data.
    raft_uv_set_snapshot_compression(&n->io, false);
    n->fsm.version = 1;
    n->fsm.data = n;
    n->fsm.apply = fsm_apply;
    n->fsm.snapshot = fsm_snapshot;
    n->fsm.restore = fsm_restore;
    rv = raft_init(&n->raft, &n->io, &n->fsm, id, address);
    if (rv != 0) {
        set_err(err, err_len, "raft_init failed: %s (%d)", raft_errmsg(&n->raft), rv);
        raft_uv_close(&n->io);
        goto fail_loop;
    }
    n->raft.data = n;
    if (options.election_timeout_ms) raft_set_election_timeout(&n->raft, options.election_timeout_ms);
    if (options.heartbeat_timeout_ms) raft_set_heartbeat_timeout(&n->raft, options.heartbeat_timeout_ms);
    if (options.snapshot_threshold) raft_set_snapshot_threshold(&n->raft, options.snapshot_threshold);
    if (options.snapshot_trailing) raft_set_snapshot_trailing(&n->raft, options.snapshot_trailing);
    raft_set_pre_vote(&n->raft, true);
    return n;

fail_loop:
    uv_close((uv_handle_t *)&n->wake, NULL);
    uv_close((uv_handle_t *)&n->status_timer, NULL);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    uv_loop_close(&n->loop);
    free(n);
    return NULL;
}

static int single_configuration(qr_node *n, struct raft_configuration *conf) {
    raft_configuration_init(conf);
    return raft_configuration_add(conf, n->raft.id, n->raft.address, RAFT_VOTER);
}

int qr_bootstrap(qr_node *n, char *err, size_t err_len) {
    struct raft_configuration conf;
    int rv = single_configuration(n, &conf);
    if (rv == 0) rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0) set_err(err, err_len, "raft_bootstrap: %s (%d)", raft_errmsg(&n->raft), rv);
    return rv;
}

int qr_recover_single(qr_node *n, char *err, size_t err_len) {
    struct raft_configuration conf;
    int rv = single_configuration(n, &conf);
    if (rv == 0) rv = raft_recover(&n->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0) set_err(err, err_len, "raft_recover: %s (%d)", raft_errmsg(&n->raft), rv);
    return rv;
}

static void *loop_main(void *arg) {
    qr_node *n = arg;
    uv_run(&n->loop, UV_RUN_DEFAULT);
    return NULL;
}

// MARK: damaged snapshots

// Whether `data` is one whole LZ4 frame that decompresses to the size its header declares. libraft
// wrote its snapshots compressed before Quiver turned compression off, and its own decompression
// spins forever on some damaged frames, so a compressed snapshot is checked before libraft reads it.
static int lz4_frame_is_whole(const char *data, size_t len) {
    LZ4F_dctx *ctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) return 0;
    LZ4F_frameInfo_t info;
    size_t pos = len;
    int whole = 0;
    if (LZ4F_isError(LZ4F_getFrameInfo(ctx, &info, data, &pos)) || info.contentSize == 0) goto done;
    char *out = malloc(1 << 16);
    if (!out) goto done;
    unsigned long long total = 0;
    for (;;) {
        size_t src = len - pos, dst = 1 << 16;
        size_t hint = LZ4F_decompress(ctx, out, &dst, data + pos, &src, NULL);
        if (LZ4F_isError(hint)) break;
        pos += src;
        total += dst;
        if (total > info.contentSize) break;
        if (hint == 0) {
            whole = total == info.contentSize;
            break;
        }
        if (src == 0 && dst == 0) break;  // cut short: more input needed than there is
    }
    free(out);
done:
    LZ4F_freeDecompressionContext(ctx);
    return whole;
}

static int check_snapshots(const char *dir, char *err, size_t err_len) {
    DIR *d = opendir(dir);
    if (!d) return 0;  // no directory yet: nothing to check
    struct dirent *entry;
    int rv = 0;
    while (rv == 0 && (entry = readdir(d)) != NULL) {
        size_t name_len = strlen(entry->d_name);
        if (strncmp(entry->d_name, "snapshot-", 9) != 0 || (name_len > 5 && strcmp(entry->d_name + name_len - 5, ".meta") == 0)) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        char *data = NULL;
        long len = -1;
        if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            data = malloc(len ? (size_t)len : 1);
            if (data && fread(data, 1, (size_t)len, f) != (size_t)len) len = -1;
        }
        fclose(f);
        const unsigned char magic[4] = {0x04, 0x22, 0x4D, 0x18};  // LZ4 frame magic, little endian
        if (data && len >= 4 && memcmp(data, magic, 4) == 0 && !lz4_frame_is_whole(data, (size_t)len)) {
            rv = RAFT_CORRUPT;
            set_err(err, err_len, "the consensus snapshot %s is damaged: its compressed data does not decompress (%d)", path, rv);
        }
        free(data);
    }
    closedir(d);
    return rv;
}

int qr_start(qr_node *n, char *err, size_t err_len) {
    int rv = check_snapshots(n->dir, err, err_len);
    if (rv != 0) return rv;
    rv = raft_start(&n->raft);
    if (rv != 0) {
        set_err(err, err_len, "raft_start: %s (%d)", raft_errmsg(&n->raft), rv);
        return rv;
    }
    refresh_status(n);
    uv_timer_start(&n->status_timer, on_status_timer, 5, 5);
    if (pthread_create(&n->thread, NULL, loop_main, n) != 0) {
        set_err(err, err_len, "cannot start the consensus thread%s (%d)", NULL, errno);
        return RAFT_NOMEM;
    }
    n->thread_started = 1;
    return 0;
}

void qr_destroy(qr_node *n) {
    if (n->thread_started) {
        enqueue(n, new_request(REQ_STOP, 0));
        pthread_join(n->thread, NULL);
    } else {
        n->closing = 1;
        raft_close(&n->raft, on_raft_closed);
        uv_run(&n->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&n->loop);
    pthread_mutex_destroy(&n->lock);
    free(n);
}
