/* Firmware harness of scripts/mcu-check.sh: runs a model exported with
 * `convnet export --format c` on every image of images.u8 (784-byte MNIST images,
 * pixels 0..255, one after another) and writes preds.txt, one line per image:
 * the class model_predict_u8 returned and the bits of its scores in hex.
 *
 * On an Arm Cortex-M (under qemu-system-arm) the files are reached by semihosting,
 * startup is picolibc's crt0, and it also prints, on the semihosting console,
 *     instructions TOTAL images N stack BYTES
 * TOTAL: instructions executed inside model_predict_u8, from SysTick on the core
 * clock (QEMU's -icount shift=0 runs one instruction per virtual nanosecond; the
 * instructions per tick are calibrated on a loop of known length); BYTES: the stack
 * high-water mark (the stack is painted at start and scanned at the end).
 * On the host (no __arm__) the same loop runs over stdio: the reference run. */
#include "model.h"
#include <stdint.h>

#define IMAGE_BYTES (MODEL_INPUT_SIZE)

#if defined(__arm__)
static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
static unsigned length(const char *s) { unsigned n = 0; while (s[n]) n++; return n; }
static int file_open(const char *name, int write) {
    uintptr_t a[3] = {(uintptr_t)name, write ? 5u : 1u, length(name)};   /* "wb" / "rb" */
    return semihost(0x01, a);
}
/* bytes read (0 at the end) */
static unsigned file_read(int fd, void *buf, unsigned n) {
    uintptr_t a[3] = {(uintptr_t)fd, (uintptr_t)buf, n};
    return n - (unsigned)semihost(0x06, a);
}
static int file_write(int fd, const void *buf, unsigned n) {
    uintptr_t a[3] = {(uintptr_t)fd, (uintptr_t)buf, n};
    return semihost(0x05, a) == 0 ? 0 : -1;
}
static void file_close(int fd) { uintptr_t a[1] = {(uintptr_t)fd}; semihost(0x02, a); }
static void console(const char *s) { semihost(0x04, s); }
static void finish(int ok) {   /* SYS_EXIT: ApplicationExit or RunTimeErrorUnknown; QEMU exits 0 or 1 */
    semihost(0x18, (const void *)(uintptr_t)(ok ? 0x20026 : 0x20023));
    for (;;) {}
}

/* SysTick on the processor clock, free-running from 2^24 - 1 down; the interrupt counts wraps. */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
static volatile uint32_t wraps;
void arm_systick_isr(void) { wraps++; }
static uint64_t ticks(void) {
    uint32_t w, v;
    do { w = wraps; v = SYST_CVR; } while (w != wraps);
    return ((uint64_t)w << 24) + (0xFFFFFFu - v);
}
static void timer_start(void) {   /* writing CVR clears it; the next tick reloads 2^24 - 1 */
    SYST_RVR = 0xFFFFFF;
    SYST_CVR = 0;
    SYST_CSR = 7;
    while (SYST_CVR == 0) {}
}

/* 2 * n + 1 instructions (movs, then n times subs + bne), in any Thumb mode */
static void known_loop(uint32_t n) {
    __asm__ volatile(".syntax unified\n mov r0, %0\n1: subs r0, r0, #1\n bne 1b" : : "r"(n) : "r0", "cc");
}

extern uint32_t __heap_end[], __stack[];   /* picolibc.ld: the stack region is [__heap_end, __stack) */
#define PAINT 0xA5C3A5C3u
static void paint_stack(void) {
    uintptr_t sp;
    uint32_t *p;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (p = __heap_end; (uintptr_t)p < sp - 64; p++) *p = PAINT;
}
static uint32_t stack_used(void) {
    uint32_t *p = __heap_end;
    while (p < __stack && *p == PAINT) p++;
    return (uint32_t)((uintptr_t)__stack - (uintptr_t)p);
}
#else
#include <stdio.h>
#include <stdlib.h>
static FILE *files[2];
static int file_open(const char *name, int write) {
    files[write] = fopen(name, write ? "wb" : "rb");
    return files[write] ? write : -1;
}
static unsigned file_read(int fd, void *buf, unsigned n) { return (unsigned)fread(buf, 1, n, files[fd]); }
static int file_write(int fd, const void *buf, unsigned n) { return fwrite(buf, 1, n, files[fd]) == n ? 0 : -1; }
static void file_close(int fd) { fclose(files[fd]); }
static void console(const char *s) { fputs(s, stderr); }
static void finish(int ok) { exit(ok ? 0 : 1); }
#endif

static char *put_hex(char *p, uint32_t v) {
    int i;
    for (i = 28; i >= 0; i -= 4) *p++ = "0123456789abcdef"[(v >> i) & 15];
    return p;
}
static char *put_dec(char *p, uint64_t v) {
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static unsigned char image[IMAGE_BYTES];

int main(void) {
    float out[MODEL_NUM_CLASSES];
    char line[16 + 9 * MODEL_NUM_CLASSES];
    uint64_t images = 0, insns = 0;
    int in, pred, k;
#if defined(__arm__)
    uint64_t t0, cal_ticks, cal_insns = 2 * 1000000 + 1, busy = 0;
    paint_stack();
    timer_start();
    t0 = ticks();
    known_loop(1000000);
    cal_ticks = ticks() - t0;
#endif
    in = file_open("images.u8", 0);
    pred = file_open("preds.txt", 1);
    if (in < 0 || pred < 0) { console("harness: cannot open images.u8 or preds.txt\n"); finish(0); }
    while (file_read(in, image, IMAGE_BYTES) == IMAGE_BYTES) {
        char *p = line;
        int c;
#if defined(__arm__)
        uint64_t t = ticks();
        c = model_predict_u8(image, out);
        busy += ticks() - t;
#else
        c = model_predict_u8(image, out);
#endif
        *p++ = (char)('0' + c / 10);
        *p++ = (char)('0' + c % 10);
        for (k = 0; k < MODEL_NUM_CLASSES; k++) {
            union { float f; uint32_t u; } bits;
            bits.f = out[k];
            *p++ = ' ';
            p = put_hex(p, bits.u);
        }
        *p++ = '\n';
        if (file_write(pred, line, (unsigned)(p - line))) { console("harness: cannot write preds.txt\n"); finish(0); }
        images++;
    }
    file_close(in);
    file_close(pred);
#if defined(__arm__)
    insns = busy * cal_insns / cal_ticks;
#endif
    {
        char msg[96], *p = msg;
        const char *s;
        for (s = "instructions "; *s; s++) *p++ = *s;
        p = put_dec(p, insns);
        for (s = " images "; *s; s++) *p++ = *s;
        p = put_dec(p, images);
#if defined(__arm__)
        for (s = " stack "; *s; s++) *p++ = *s;
        p = put_dec(p, stack_used());
#endif
        *p++ = '\n';
        *p = '\0';
        console(msg);
    }
    finish(1);
    return 0;
}
