/*
 * backtrace C layer over PUMAS 1.2.3: see _shim.h for the interface.
 *
 * Everything that runs once per Monte Carlo step lives here (navigation,
 * local properties, random numbers, the loop over histories), so that the
 * Python layer only hands over arrays.
 */
#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "_pumas_api.h"
#include "_shim.h"

struct bt_pumas_api bt_pumas;

/* Names of the API table members, in declaration order. */
static const char *API_NAMES[] = { "pumas_physics_create",
        "pumas_physics_destroy", "pumas_physics_dump", "pumas_physics_load",
        "pumas_physics_cutoff", "pumas_physics_elastic_ratio",
        "pumas_context_transport", "pumas_physics_print", "pumas_version",
        "pumas_physics_particle", "pumas_error_function",
        "pumas_error_handler_set", "pumas_error_handler_get",
        "pumas_error_catch", "pumas_error_raise", "pumas_context_create",
        "pumas_context_random_seed_set", "pumas_context_random_seed_get",
        "pumas_context_random_load", "pumas_context_random_dump",
        "pumas_context_destroy", "pumas_context_physics_get",
        "pumas_physics_property_range", "pumas_physics_property_proper_time",
        "pumas_physics_property_magnetic_rotation",
        "pumas_physics_property_kinetic_energy",
        "pumas_physics_property_stopping_power",
        "pumas_physics_property_energy_straggling",
        "pumas_physics_property_elastic_cutoff_angle",
        "pumas_physics_property_elastic_path",
        "pumas_physics_property_transport_path",
        "pumas_physics_property_cross_section",
        "pumas_physics_element_length", "pumas_physics_element_properties",
        "pumas_physics_element_name", "pumas_physics_element_index",
        "pumas_physics_material_name", "pumas_physics_material_index",
        "pumas_physics_material_length", "pumas_physics_material_properties",
        "pumas_physics_composite_length", "pumas_physics_composite_update",
        "pumas_physics_composite_properties", "pumas_physics_table_value",
        "pumas_physics_table_length", "pumas_physics_table_index",
        "pumas_recorder_create", "pumas_recorder_clear",
        "pumas_recorder_destroy", "pumas_memory_allocator",
        "pumas_memory_reallocator", "pumas_memory_deallocator",
        "pumas_physics_dcs", "pumas_constant", "pumas_dcs_register",
        "pumas_dcs_get", "pumas_dcs_default", "pumas_dcs_range",
        "pumas_elastic_dcs", "pumas_elastic_path", "pumas_electronic_dcs",
        "pumas_electronic_density_effect",
        "pumas_electronic_stopping_power" };

#define N_API (sizeof(API_NAMES) / sizeof(API_NAMES[0]))

/* ---------------------------------------------------------------------------
 * Error capture: PUMAS's default handler calls exit(); ours records the
 * error and returns, so that the caller gets the return code.
 */
static int last_code = 0;
static char last_function[128] = "";
static char last_message[1024] = "";

static void error_handler(
    enum pumas_return rc, pumas_function_t *caller, const char *message)
{
        last_code = (int)rc;
        const char *name = (caller != NULL) ?
            bt_pumas.pumas_error_function(caller) : NULL;
        snprintf(last_function, sizeof(last_function), "%s",
            (name != NULL) ? name : "?");
        snprintf(last_message, sizeof(last_message), "%s",
            (message != NULL) ? message : "");
}

int bt_error_code(void) { return last_code; }
const char *bt_error_function(void) { return last_function; }
const char *bt_error_message(void) { return last_message; }

void bt_error_clear(void)
{
        last_code = 0;
        last_function[0] = '\0';
        last_message[0] = '\0';
}

int bt_load(const char *path, char *error, int size)
{
        void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) {
                snprintf(error, size, "cannot open %s (%s)", path, dlerror());
                return -1;
        }
        struct bt_pumas_api api;
        void **slots = (void **)&api;
        if (sizeof(api) != N_API * sizeof(void *)) {
                snprintf(error, size, "internal error: API table size");
                return -1;
        }
        size_t i;
        for (i = 0; i < N_API; i++) {
                slots[i] = dlsym(handle, API_NAMES[i]);
                if (slots[i] == NULL) {
                        snprintf(error, size,
                            "%s does not export %s: not a PUMAS 1.2 library",
                            path, API_NAMES[i]);
                        return -1;
                }
        }
        memcpy(&bt_pumas, &api, sizeof(api));
        bt_pumas.pumas_error_handler_set(&error_handler);
        return 0;
}

/* ---------------------------------------------------------------------------
 * Physics dump and load through paths.
 */
/* Record a failed fopen of `path` as PUMAS's path error; `purpose` ends the
 * message ("" or " for writing"). */
static enum pumas_return open_error(const char *path, const char *purpose)
{
        last_code = PUMAS_RETURN_PATH_ERROR;
        snprintf(last_function, sizeof(last_function), "fopen");
        snprintf(last_message, sizeof(last_message), "could not open %s%s",
            path, purpose);
        return PUMAS_RETURN_PATH_ERROR;
}

enum pumas_return bt_physics_dump(
    const struct pumas_physics *physics, const char *path)
{
        FILE *stream = fopen(path, "wb");
        if (stream == NULL) return open_error(path, " for writing");
        enum pumas_return rc = bt_pumas.pumas_physics_dump(physics, stream);
        if (fclose(stream) != 0 && rc == PUMAS_RETURN_SUCCESS)
                rc = PUMAS_RETURN_IO_ERROR;
        return rc;
}

enum pumas_return bt_physics_load(
    struct pumas_physics **physics, const char *path, long offset)
{
        FILE *stream = fopen(path, "rb");
        if (stream == NULL) return open_error(path, "");
        enum pumas_return rc;
        if (fseek(stream, offset, SEEK_SET) != 0) {
                rc = PUMAS_RETURN_IO_ERROR;
        } else {
                rc = bt_pumas.pumas_physics_load(physics, stream);
        }
        fclose(stream);
        return rc;
}

/* ---------------------------------------------------------------------------
 * Counter-based random numbers: SplitMix64 (G. Steele, D. Lea, C. Flood,
 * "Fast splittable pseudorandom number generators", OOPSLA 2014) applied to
 * key + counter * golden gamma. One key per (seed, track, sample, stream), so
 * a history draws the same numbers whatever the batch it runs in.
 */
static inline unsigned long long mix64(unsigned long long z)
{
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

#define GOLDEN_GAMMA 0x9e3779b97f4a7c15ULL

unsigned long long bt_rng_key(unsigned long long seed, long long track,
    long long sample, unsigned long long stream)
{
        unsigned long long h = mix64(seed + GOLDEN_GAMMA);
        h = mix64(h ^ ((unsigned long long)track + 0x632be59bd9b4e019ULL));
        h = mix64(h ^ ((unsigned long long)sample + 0x8cb92ba72f3d8dd7ULL));
        h = mix64(h ^ (stream + 0x2545f4914f6cdd1dULL));
        return h;
}

double bt_rng_uniform(struct bt_rng *rng)
{
        rng->counter++;
        const unsigned long long x =
            mix64(rng->key + rng->counter * GOLDEN_GAMMA);
        /* 53 random bits, centred in their bin: strictly inside (0, 1). */
        return ((double)(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

void bt_rng_uniforms(unsigned long long seed, long long n,
    const long long *track, const long long *sample,
    unsigned long long stream, int m, double *out)
{
        long long i;
        for (i = 0; i < n; i++) {
                struct bt_rng rng = { bt_rng_key(seed, track[i],
                                          (sample != NULL) ? sample[i] : 0,
                                          stream),
                        0 };
                int j;
                for (j = 0; j < m; j++) out[i * m + j] = bt_rng_uniform(&rng);
        }
}

/* ---------------------------------------------------------------------------
 * Geometry navigation.
 */
static int region_contains(const struct bt_region *r, double x, double y)
{
        if (r->shape == 0) return 1;
        const double dx = x - r->cx, dy = y - r->cy;
        if (r->shape == 1) return (fabs(dx) < r->a) && (fabs(dy) < r->b);
        const double ex = dx / r->a, ey = dy / r->b;
        return ex * ex + ey * ey < 1.0;
}

static int find_slab(const struct bt_geometry *g, double z)
{
        if ((z < g->z_min) || (z >= g->z_max)) return -1;
        int lo = 0, hi = g->n_slabs - 1;
        if ((hi < 0) || (z < g->slabs[0].z0) || (z >= g->slabs[hi].z1))
                return -1;
        while (lo < hi) {
                const int mid = (lo + hi + 1) / 2;
                if (g->slabs[mid].z0 <= z)
                        lo = mid;
                else
                        hi = mid - 1;
        }
        if (z >= g->slabs[lo].z1) return -1;
        return lo;
}

static int region_in_slab(const struct bt_geometry *g, int s, double x,
    double y)
{
        if ((s < 0) || (fabs(x) >= g->half_x) || (fabs(y) >= g->half_y))
                return -1;
        const struct bt_slab *slab = g->slabs + s;
        int i;
        for (i = slab->first; i < slab->first + slab->count; i++) {
                if (region_contains(g->regions + i, x, y)) return i;
        }
        return -1;
}

static int locate(const struct bt_geometry *g, const double *r)
{
        return region_in_slab(g, find_slab(g, r[2]), r[0], r[1]);
}

/* The region a particle at r moving with dz/ds of sign uz is about to
 * cross. Slabs are half-open [z0, z1): a particle exactly on a slab face
 * moving upstream (a track given on a detector plane, traced backward)
 * belongs to the slab upstream of that face, not to the one it leaves. */
static int locate_moving(const struct bt_geometry *g, const double *r,
    double uz)
{
        int s = find_slab(g, r[2]);
        if (uz < 0.) {
                const int last = g->n_slabs - 1;
                if ((s < 0) && (last >= 0) && (r[2] == g->slabs[last].z1) &&
                    (r[2] <= g->z_max))
                        s = last;
                else if ((s > 0) && (r[2] == g->slabs[s].z0))
                        s = s - 1;
        }
        return region_in_slab(g, s, r[0], r[1]);
}

void bt_locate(const struct bt_geometry *geometry, long long n,
    const double *xyz, int *region)
{
        long long i;
        for (i = 0; i < n; i++) region[i] = locate(geometry, xyz + 3 * i);
}

/* Smallest positive root of a t^2 + b t + c = 0, or -1. */
static double smallest_positive_root(double a, double b, double c)
{
        if (a <= 0.) return -1.;
        const double delta = b * b - 4. * a * c;
        if (delta < 0.) return -1.;
        const double sq = sqrt(delta);
        const double t1 = (-b - sq) / (2. * a);
        const double t2 = (-b + sq) / (2. * a);
        if (t1 > 0.) return t1;
        if (t2 > 0.) return t2;
        return -1.;
}

/* Distance to the first crossing of the planes lo and hi along one axis
 * (-1 if none ahead): from below lo the first plane hit is lo, from inside
 * it is the plane in the direction of motion, from above hi it is hi. */
static double plane_distance(double x, double u, double lo, double hi)
{
        if (u > 0.) {
                if (x < lo) return (lo - x) / u;
                if (x < hi) return (hi - x) / u;
        } else if (u < 0.) {
                if (x > hi) return (hi - x) / u;
                if (x > lo) return (lo - x) / u;
        }
        return -1.;
}

static void keep_min(double *best, double d)
{
        if ((d > 0.) && ((*best < 0.) || (d < *best))) *best = d;
}

/* Distance to the boundary of a region's transverse shape. */
static double shape_distance(
    const struct bt_region *r, const double *p, const double *u)
{
        const double dx = p[0] - r->cx, dy = p[1] - r->cy;
        double best = -1.;
        if (r->shape == 1) {
                keep_min(&best, plane_distance(dx, u[0], -r->a, r->a));
                keep_min(&best, plane_distance(dy, u[1], -r->b, r->b));
        } else if (r->shape == 2) {
                const double ia2 = 1. / (r->a * r->a),
                             ib2 = 1. / (r->b * r->b);
                const double a = u[0] * u[0] * ia2 + u[1] * u[1] * ib2;
                const double b = 2. * (dx * u[0] * ia2 + dy * u[1] * ib2);
                const double c = dx * dx * ia2 + dy * dy * ib2 - 1.;
                keep_min(&best, smallest_positive_root(a, b, c));
        }
        return best;
}

static double distance_to_boundary(
    const struct bt_geometry *g, int region, const double *p, const double *u)
{
        const struct bt_region *r = g->regions + region;
        const struct bt_slab *slab = g->slabs + r->slab;
        double best = -1.;
        keep_min(&best, plane_distance(p[2], u[2], slab->z0, slab->z1));
        keep_min(&best, plane_distance(p[0], u[0], -g->half_x, g->half_x));
        keep_min(&best, plane_distance(p[1], u[1], -g->half_y, g->half_y));
        int i;
        for (i = slab->first; i < slab->first + slab->count; i++)
                keep_min(&best, shape_distance(g->regions + i, p, u));
        return best;
}

void bt_distance(const struct bt_geometry *geometry, long long n,
    const double *xyz, const double *u, double *distance)
{
        long long i;
        for (i = 0; i < n; i++) {
                const int r = locate(geometry, xyz + 3 * i);
                distance[i] = (r < 0) ? -1. :
                    distance_to_boundary(geometry, r, xyz + 3 * i, u + 3 * i);
        }
}

/* Trilinear interpolation in a field map (zero outside the grid). */
static void map_field(const struct bt_field_map *m, const double *p, double *b)
{
        b[0] = b[1] = b[2] = 0.;
        const double fx = (p[0] - m->x0) / m->dx, fy = (p[1] - m->y0) / m->dy,
                     fz = (p[2] - m->z0) / m->dz;
        if ((fx < 0.) || (fy < 0.) || (fz < 0.) || (fx > m->nx - 1) ||
            (fy > m->ny - 1) || (fz > m->nz - 1))
                return;
        int ix = (int)fx, iy = (int)fy, iz = (int)fz;
        if (ix >= m->nx - 1) ix = (m->nx > 1) ? m->nx - 2 : 0;
        if (iy >= m->ny - 1) iy = (m->ny > 1) ? m->ny - 2 : 0;
        if (iz >= m->nz - 1) iz = (m->nz > 1) ? m->nz - 2 : 0;
        const double tx = (m->nx > 1) ? fx - ix : 0.,
                     ty = (m->ny > 1) ? fy - iy : 0.,
                     tz = (m->nz > 1) ? fz - iz : 0.;
        int c;
        for (c = 0; c < 8; c++) {
                const int jx = c & 1, jy = (c >> 1) & 1, jz = (c >> 2) & 1;
                if ((jx && m->nx < 2) || (jy && m->ny < 2) ||
                    (jz && m->nz < 2))
                        continue;
                const double w = (jx ? tx : 1. - tx) * (jy ? ty : 1. - ty) *
                    (jz ? tz : 1. - tz);
                const long long k =
                    (((long long)(iz + jz) * m->ny + (iy + jy)) * m->nx +
                        (ix + jx)) * 3;
                b[0] += w * m->b[k];
                b[1] += w * m->b[k + 1];
                b[2] += w * m->b[k + 2];
        }
}

static void region_field(const struct bt_region *r, const double *p, double *b)
{
        b[0] = r->field[0];
        b[1] = r->field[1];
        b[2] = r->field[2];
        if ((r->map >= 0) && (r->geometry != NULL) &&
            (r->map < r->geometry->n_maps)) {
                double bm[3];
                map_field(r->geometry->maps + r->map, p, bm);
                b[0] += r->map_scale * bm[0];
                b[1] += r->map_scale * bm[1];
                b[2] += r->map_scale * bm[2];
        }
}

void bt_field(const struct bt_geometry *geometry, long long n,
    const double *xyz, double *b)
{
        long long i;
        for (i = 0; i < n; i++) {
                const int r = locate(geometry, xyz + 3 * i);
                if (r < 0) {
                        b[3 * i] = b[3 * i + 1] = b[3 * i + 2] = 0.;
                } else {
                        region_field(geometry->regions + r, xyz + 3 * i,
                            b + 3 * i);
                }
        }
}

/* PUMAS locals callback: density and field of a region. The returned value
 * caps the step in magnetised regions. PUMAS rotates the direction exactly
 * but moves along straight segments, so the position lags by ~h*theta/2 per
 * magnet for steps h: the cap is field_accuracy x the Larmor radius (a lag of
 * ~field_accuracy/2 per metre of field whatever the momentum), and at most
 * field_step (measured with PUMAS 1.2.3: with scattering on and uncapped
 * steps a 100 GeV muon under-deflects by ~4 % in 1.8 T over 1 m). */
static double locals_cb(struct pumas_medium *medium,
    struct pumas_state *state, struct pumas_locals *locals)
{
        const struct bt_region *r = (const struct bt_region *)medium;
        const struct bt_geometry *g = r->geometry;
        locals->density = r->density;
        region_field(r, state->position, locals->magnet);
        const double *b = locals->magnet;
        if ((b[0] == 0.) && (b[1] == 0.) && (b[2] == 0.) && (r->map < 0))
                return 0.;
        double step = g->field_step;
        if (r->map >= 0 && r->map < g->n_maps) {
                const struct bt_field_map *m = g->maps + r->map;
                double h = m->dz;
                if (m->dx < h) h = m->dx;
                if (m->dy < h) h = m->dy;
                if (h < step) step = h;
        }
        if (g->field_accuracy > 0.) {
                const double *u = state->direction;
                const double bt[3] = { u[1] * b[2] - u[2] * b[1],
                        u[2] * b[0] - u[0] * b[2], u[0] * b[1] - u[1] * b[0] };
                const double bperp =
                    sqrt(bt[0] * bt[0] + bt[1] * bt[1] + bt[2] * bt[2]);
                if (bperp > 0.) {
                        const double k = state->energy;
                        const double p = sqrt(k * (k + 2. * g->mass));
                        const double larmor = p / (0.299792458 * bperp);
                        const double h = g->field_accuracy * larmor;
                        if (h < step) step = h;
                }
        }
        return (step > 1E-04) ? step : 1E-04;
}

void bt_geometry_init(struct bt_geometry *geometry)
{
        int i, n = 0;
        for (i = 0; i < geometry->n_slabs; i++) {
                const int last =
                    geometry->slabs[i].first + geometry->slabs[i].count;
                if (last > n) n = last;
        }
        for (i = 0; i < n; i++) {
                geometry->regions[i].medium.locals = &locals_cb;
                geometry->regions[i].geometry = geometry;
        }
}

/* Offset added to boundary distances so that a step ends in the next
 * medium (PUMAS_STEP_RAW mode). */
#define STEP_EPSILON 1E-07

static enum pumas_step medium_cb(struct pumas_context *context,
    struct pumas_state *state, struct pumas_medium **medium_ptr,
    double *step_ptr)
{
        if ((medium_ptr == NULL) && (step_ptr == NULL)) return PUMAS_STEP_RAW;
        const struct bt_context_data *data = context->user_data;
        const struct bt_geometry *g = data->geometry;
        const double sgn = (context->mode.direction == 0) ? 1. : -1.;
        const double u[3] = { sgn * state->direction[0],
                sgn * state->direction[1], sgn * state->direction[2] };
        const int r = locate_moving(g, state->position, u[2]);
        if (medium_ptr != NULL)
                *medium_ptr = (r < 0) ? NULL :
                    (struct pumas_medium *)(g->regions + r);
        if (step_ptr != NULL) {
                if (r < 0) {
                        *step_ptr = -1.;
                } else {
                        const double d =
                            distance_to_boundary(g, r, state->position, u);
                        *step_ptr = (d > 0.) ? d + STEP_EPSILON : -1.;
                }
        }
        return PUMAS_STEP_RAW;
}

static double random_cb(struct pumas_context *context)
{
        struct bt_context_data *data = context->user_data;
        return bt_rng_uniform(&data->rng);
}

int bt_context_data_size(void) { return (int)sizeof(struct bt_context_data); }

void bt_context_setup(
    struct pumas_context *context, const struct bt_geometry *geometry)
{
        struct bt_context_data *data = context->user_data;
        data->geometry = geometry;
        data->rng.key = 0;
        data->rng.counter = 0;
        context->medium = &medium_cb;
        context->random = &random_cb;
}

/* ---------------------------------------------------------------------------
 * Batch transport.
 */
static void put_record(struct bt_record *rec, long long history, int region,
    int event, const struct pumas_state *s)
{
        rec->history = history;
        rec->region = region;
        rec->event = event;
        memcpy(rec->position, s->position, sizeof(rec->position));
        memcpy(rec->direction, s->direction, sizeof(rec->direction));
        rec->energy = s->energy;
        rec->weight = s->weight;
        rec->distance = s->distance;
        rec->grammage = s->grammage;
}

static int final_status(const struct bt_geometry *g, const double *p)
{
        const double tol = 1E-05;
        if (p[2] <= g->z_min + tol) return BT_STATUS_REACHED_Z_MIN;
        if (p[2] >= g->z_max - tol) return BT_STATUS_REACHED_Z_MAX;
        return BT_STATUS_LEFT_WORLD;
}

/* The per-history arrays of a batch (bt_transport_batch), updated in place. */
struct batch_arrays {
        double *charge, *energy, *weight, *position, *direction, *distance,
            *grammage;
};

/* History i's start state from the batch arrays. */
static void load_state(
    struct pumas_state *s, const struct batch_arrays *a, long long i)
{
        memset(s, 0, sizeof(*s));
        s->charge = a->charge[i];
        s->energy = a->energy[i];
        s->weight = a->weight[i];
        memcpy(s->position, a->position + 3 * i, sizeof(s->position));
        memcpy(s->direction, a->direction + 3 * i, sizeof(s->direction));
}

/* History i's final state into the batch arrays. */
static void store_state(
    const struct batch_arrays *a, long long i, const struct pumas_state *s)
{
        a->charge[i] = s->charge;
        a->energy[i] = s->energy;
        a->weight[i] = s->weight;
        memcpy(a->position + 3 * i, s->position, sizeof(s->position));
        memcpy(a->direction + 3 * i, s->direction, sizeof(s->direction));
        a->distance[i] = s->distance;
        a->grammage[i] = s->grammage;
}

/* Where recorded states go: `n` of `capacity` records used; `overflow` is
 * set when a state of the current history did not fit. */
struct record_sink {
        struct bt_record *records;
        long long capacity;
        long long n;
        int overflow;
};

static void record_state(struct record_sink *sink, long long history,
    int region, int event, const struct pumas_state *s)
{
        if (sink->n < sink->capacity)
                put_record(sink->records + sink->n++, history, region, event, s);
        else
                sink->overflow = 1;
}

/* A fresh PUMAS context for one history, with the batch options and the
 * history's random stream (key of seed, track, sample); NULL if PUMAS
 * cannot create one. PUMAS keeps the second Box-Muller Gaussian of a pair
 * in its context, which would otherwise leak from one history into the
 * next and make results depend on the batch a history runs in. Creating a
 * context is a single allocation. */
static struct pumas_context *history_context(
    const struct pumas_physics *physics, const struct bt_geometry *g,
    const struct bt_options *options, long long track, long long sample)
{
        struct pumas_context *ctx = NULL;
        if (bt_pumas.pumas_context_create(&ctx, physics,
                (int)sizeof(struct bt_context_data)) != PUMAS_RETURN_SUCCESS)
                return NULL;
        bt_context_setup(ctx, g);
        ctx->mode.energy_loss = options->energy_loss;
        ctx->mode.scattering = options->scattering;
        ctx->mode.decay = options->decay;
        ctx->mode.direction = options->direction;
        ctx->accuracy = options->accuracy;
        ctx->limit.energy = options->energy_limit;
        struct bt_context_data *data = ctx->user_data;
        data->rng.key = bt_rng_key(options->seed, track, sample, 0);
        data->rng.counter = 0;
        return ctx;
}

/* The events that end the next step in region `r`: the energy limit and,
 * when recording, a change of medium and the region's record step. */
static void set_step_events(struct pumas_context *ctx,
    const struct bt_options *options, const struct bt_region *r,
    const struct pumas_state *s)
{
        int ev = (options->energy_limit > 0.) ? PUMAS_EVENT_LIMIT_ENERGY :
                                                PUMAS_EVENT_NONE;
        if (options->record) {
                ev |= PUMAS_EVENT_MEDIUM;
                if (r->record_step > 0.) {
                        ev |= PUMAS_EVENT_LIMIT_DISTANCE;
                        ctx->limit.distance = s->distance + r->record_step;
                }
        }
        ctx->event = ev;
}

/* The status of a history whose step ended with `event` (`left`: it left
 * the world), or -1 when it goes on. */
static int step_status(const struct bt_geometry *g,
    const struct bt_options *options, const struct pumas_state *s,
    enum pumas_event event, int left)
{
        if (left) return final_status(g, s->position);
        if (event & PUMAS_EVENT_LIMIT_ENERGY)
                return (options->direction == 0 && s->energy <= 0.) ?
                    BT_STATUS_STOPPED :
                    BT_STATUS_ENERGY_LIMIT;
        if (event & PUMAS_EVENT_WEIGHT) return BT_STATUS_WEIGHT_ZERO;
        if (s->decayed || (event & PUMAS_EVENT_VERTEX_DECAY))
                return BT_STATUS_DECAYED;
        if (s->energy <= 0.) return BT_STATUS_STOPPED;
        /* Transport ended without a foreseen event: the muon ranged out. */
        if (!(event & (PUMAS_EVENT_MEDIUM | PUMAS_EVENT_LIMIT_DISTANCE)))
                return BT_STATUS_STOPPED;
        return -1;
}

/* Transport history `history` from state `s` region by region until it
 * ends, recording its states (options->record) into `sink`; returns its
 * status. */
static int transport_history(struct pumas_context *ctx,
    const struct bt_options *options, const struct bt_geometry *g,
    struct pumas_state *s, long long history, struct record_sink *sink)
{
        int region = locate_moving(g, s->position,
            (options->direction == 0) ? s->direction[2] : -s->direction[2]);
        if (region < 0) return BT_STATUS_OUTSIDE_WORLD;
        if (options->record)
                record_state(sink, history, region, PUMAS_EVENT_START, s);
        for (;;) {
                set_step_events(ctx, options, g->regions + region, s);
                enum pumas_event event = PUMAS_EVENT_NONE;
                struct pumas_medium *media[2] = { NULL, NULL };
                if (bt_pumas.pumas_context_transport(ctx, s, &event, media) !=
                    PUMAS_RETURN_SUCCESS)
                        return BT_STATUS_PUMAS_ERROR;
                const int next = (media[1] == NULL) ? -1 :
                    (int)((struct bt_region *)media[1] - g->regions);
                if (options->record)
                        record_state(sink, history, next, event, s);
                const int st =
                    step_status(g, options, s, event, media[1] == NULL);
                if (st >= 0) return st;
                region = next;
        }
}

long long bt_transport_batch(struct pumas_context *context,
    const struct bt_options *options, long long n, const long long *track,
    const long long *sample, double *charge, double *energy, double *weight,
    double *position, double *direction, double *distance, double *grammage,
    int *status, struct bt_record *records, long long capacity,
    long long *n_records)
{
        const struct bt_context_data *template = context->user_data;
        const struct bt_geometry *g = template->geometry;
        const struct pumas_physics *physics =
            bt_pumas.pumas_context_physics_get(context);
        const struct batch_arrays arrays = { charge, energy, weight, position,
                direction, distance, grammage };
        struct record_sink sink = { records, capacity, 0, 0 };

        long long i;
        for (i = 0; i < n; i++) {
                struct pumas_context *ctx = history_context(physics, g,
                    options, track[i], (sample != NULL) ? sample[i] : 0);
                if (ctx == NULL) {
                        status[i] = BT_STATUS_PUMAS_ERROR;
                        continue;
                }
                struct pumas_state s;
                load_state(&s, &arrays, i);
                sink.overflow = 0;
                int st = transport_history(ctx, options, g, &s, i, &sink);
                bt_pumas.pumas_context_destroy(&ctx);
                if (sink.overflow && st != BT_STATUS_PUMAS_ERROR)
                        st = BT_STATUS_RECORD_OVERFLOW;
                store_state(&arrays, i, &s);
                status[i] = st;
        }
        *n_records = sink.n;
        return i;
}

void bt_dcs_eval(pumas_dcs_t *dcs, double Z, double A, double mass,
    long long n, const double *K, const double *q, double *out)
{
        long long i;
        for (i = 0; i < n; i++) out[i] = dcs(Z, A, mass, K[i], q[i]);
}
