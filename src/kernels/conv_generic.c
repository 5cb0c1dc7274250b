/* Kernels for any CPU: GCC vector extensions of 4 floats (SSE2 on x86-64),
 * multiply and add without fusing. */
#include "kernels/kernels.h"
#include <string.h>

#define WG(name) name
typedef float vf __attribute__((vector_size(16)));
#define VL 4
static inline vf generic_load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
#define VLOAD(p) generic_load(p)
#define VSTORE(p, v) do { vf v_ = (v); memcpy((p), &v_, sizeof v_); } while (0)
#define VBCAST(x) ((vf){0, 0, 0, 0} + (x))
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VZERO() ((vf){0, 0, 0, 0})
#define ACC_MAX 12
#define MR_MAX 6
#define SET_VAR cn_kernels_generic
#define SET_NAME "generic"
#include "kernels/conv_set_impl.h"
