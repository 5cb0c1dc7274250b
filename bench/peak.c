/* The machine's peak float32 multiply-add rate, measured, per kernel set.
 *
 *   peak [--threads N] [--seconds S]
 *
 * For each kernel set the CPU can run (avx512: zmm FMAs, avx2: ymm FMAs, generic:
 * the baseline x86-64 build, SSE multiply then add), every thread runs a loop of
 * independent multiply-adds on registers (12 chains, more than an FMA's latency
 * times its ports, so the loop is bound by the FMA units alone) for about S seconds;
 * the best of three runs counts. The chains' loop is unrolled by pragma: without it gcc -O2
 * keeps acc[] in memory, and store-to-load forwarding, not the FMA units, bounds the loop
 * (85 instead of 350 GFLOP/s on 2 threads of a Xeon with AVX-512). Prints tab-separated lines:
 *   cpu    <model name>    <flags that matter: avx512f avx512_vnni avx512_bf16 avx2 fma>
 *   peak   <set>   <threads>   <GFLOP/s, 2 per multiply-add>
 *   active <set>   (the set libconvnet picks on this CPU: src/kernels/conv_common.c)
 * bench/run.sh uses the active set's figure as the peak of its "% of peak" column. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 12

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Each loop returns a sum of its chains so the compiler keeps every multiply-add.
 * iters: loop trips; flops per trip: CHAINS x lanes x 2. */
__attribute__((target("avx512f"))) static float loop_avx512(long iters, float seed) {
    __m512 acc[CHAINS];
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_set1_ps(seed + (float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_fmadd_ps(acc[k], m, a);
    __m512 s = acc[0];
    for (int k = 1; k < CHAINS; k++) s = _mm512_add_ps(s, acc[k]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float loop_avx2(long iters, float seed) {
    __m256 acc[CHAINS];
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_set1_ps(seed + (float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_fmadd_ps(acc[k], m, a);
    __m256 s = acc[0];
    for (int k = 1; k < CHAINS; k++) s = _mm256_add_ps(s, acc[k]);
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}

/* Baseline x86-64 has no FMA: the generic set's inner loops are a multiply and an add. */
static float loop_generic(long iters, float seed) {
    __m128 acc[CHAINS];
    const __m128 m = _mm_set1_ps(0.999999f), a = _mm_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm_set1_ps(seed + (float)k);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 12
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm_add_ps(_mm_mul_ps(acc[k], m), a);
    __m128 s = acc[0];
    for (int k = 1; k < CHAINS; k++) s = _mm_add_ps(s, acc[k]);
    float lanes[4];
    _mm_storeu_ps(lanes, s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

typedef struct {
    const char *name;
    int lanes;
    float (*loop)(long, float);
    int supported;
} kernel_set;

/* GFLOP/s of `threads` threads each running `iters` trips; best of 3 runs. */
static double measure(const kernel_set *s, int threads, long iters) {
    double best = 0;
    volatile float sink = 0;
    for (int run = 0; run < 3; run++) {
        float total = 0;
        double t0 = now_seconds();
#pragma omp parallel num_threads(threads) reduction(+ : total)
        total += s->loop(iters, (float)omp_get_thread_num());
        double dt = now_seconds() - t0;
        sink += total;
        double gflops = (double)threads * (double)iters * CHAINS * s->lanes * 2 / dt * 1e-9;
        if (gflops > best) best = gflops;
    }
    (void)sink;
    return best;
}

/* Trips for about `seconds` per run, from a short single-thread timing. */
static long calibrate(const kernel_set *s, double seconds) {
    long iters = 1 << 16;
    for (;;) {
        double t0 = now_seconds();
        volatile float r = s->loop(iters, 1.0f);
        (void)r;
        double dt = now_seconds() - t0;
        if (dt > 0.02 || iters > (1L << 40)) return (long)((double)iters * seconds / (dt > 0 ? dt : 1e-9)) + 1;
        iters *= 4;
    }
}

static void print_cpu(void) {
    char line[4096], model[256] = "unknown", flags[256] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    int have_flags = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        if (!strncmp(line, "model name", 10) && !strcmp(model, "unknown")) {
            snprintf(model, sizeof model, "%s", colon + 2);
            model[strcspn(model, "\n")] = 0;
        }
        if (!strncmp(line, "flags", 5) && !have_flags) {
            const char *wanted[] = { "avx512f", "avx512_vnni", "avx512_bf16", "avx2", "fma" };
            for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
                char word[32];
                snprintf(word, sizeof word, " %s ", wanted[i]);
                line[strcspn(line, "\n")] = ' ';
                if (strstr(colon, word)) {
                    strncat(flags, wanted[i], sizeof flags - strlen(flags) - 2);
                    strcat(flags, " ");
                }
            }
            have_flags = 1;
        }
    }
    if (f) fclose(f);
    printf("cpu\t%s\t%s\n", model, flags);
}

int main(int argc, char **argv) {
    int threads = omp_get_num_procs();
    double seconds = 0.3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else { fprintf(stderr, "usage: peak [--threads N] [--seconds S]\n"); return 2; }
    }
    if (threads < 1 || threads > 1024 || !(seconds > 0 && seconds < 60)) {
        fprintf(stderr, "peak: --threads must be 1-1024 and --seconds in (0, 60)\n");
        return 2;
    }
    __builtin_cpu_init();
    kernel_set sets[] = {
        { "avx512", 16, loop_avx512, __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                                     __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") },
        { "avx2", 8, loop_avx2, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") },
        { "generic", 4, loop_generic, 1 },
    };
    print_cpu();
    const char *active = NULL;
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        if (!sets[i].supported) continue;
        if (!active) active = sets[i].name;
        long iters = calibrate(&sets[i], seconds);
        printf("peak\t%s\t%d\t%.1f\n", sets[i].name, threads, measure(&sets[i], threads, iters));
        fflush(stdout);
    }
    printf("active\t%s\n", active);
    return 0;
}
