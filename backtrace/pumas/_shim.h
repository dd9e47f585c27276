/*
 * backtrace's own C layer over PUMAS: library loading, error capture,
 * counter-based random numbers, the geometry navigator and batch transport
 * loops. Fed verbatim to cffi's cdef (no preprocessor directives here).
 */

/* The PUMAS API table, filled by bt_load(). */
extern struct bt_pumas_api bt_pumas;

/* Open the PUMAS shared library at `path` and resolve its API. Returns 0 on
 * success, otherwise writes a one-line reason into `error` (size `size`). */
int bt_load(const char *path, char *error, int size);

/* Last PUMAS error captured by our handler (code, function, message). */
int bt_error_code(void);
const char *bt_error_function(void);
const char *bt_error_message(void);
void bt_error_clear(void);

/* Physics dump / load through a file path. `offset` bytes are skipped before
 * loading (room for backtrace's own header). */
enum pumas_return bt_physics_dump(const struct pumas_physics *physics,
    const char *path);
enum pumas_return bt_physics_load(struct pumas_physics **physics,
    const char *path, long offset);

/* Counter-based generator (SplitMix64 keyed by seed, track and sample). */
struct bt_rng {
        unsigned long long key;
        unsigned long long counter;
};
unsigned long long bt_rng_key(unsigned long long seed,
    long long track, long long sample, unsigned long long stream);
double bt_rng_uniform(struct bt_rng *rng);
void bt_rng_uniforms(unsigned long long seed, long long n,
    const long long *track, const long long *sample,
    unsigned long long stream, int m, double *out);

/* Geometry: z slabs, each split transversely into regions tested in order
 * (the first region containing a point wins). Shapes: 0 everything, 1 box
 * (|x-cx| < a, |y-cy| < b), 2 ellipse ((x-cx)/a)^2 + ((y-cy)/b)^2 < 1. */
struct bt_geometry;
struct bt_region {
        struct pumas_medium medium;  /* must stay first */
        int shape;
        double cx, cy, a, b;         /* m */
        double density;              /* kg/m^3 (already scaled) */
        double field[3];             /* T (already scaled) */
        int map;                     /* field map index or -1 */
        double map_scale;
        double record_step;          /* m, 0: no intermediate records */
        int volume;                  /* index of the geometry volume */
        int slab;                    /* index of the slab */
        const struct bt_geometry *geometry; /* set by bt_geometry_init */
};

struct bt_slab {
        double z0, z1;               /* m */
        int first;                   /* first region index */
        int count;                   /* number of regions */
};

struct bt_field_map {
        int nx, ny, nz;
        double x0, y0, z0, dx, dy, dz; /* m */
        const double *b;             /* [nz][ny][nx][3], T */
};

struct bt_geometry {
        int n_slabs;
        struct bt_slab *slabs;
        struct bt_region *regions;
        int n_maps;
        struct bt_field_map *maps;
        double half_x, half_y;       /* world transverse half sizes, m */
        double z_min, z_max;         /* world z range, m */
        double field_step;           /* max step in magnetised regions, m */
        double field_accuracy;       /* max step / Larmor radius in fields */
        double mass;                 /* transported particle mass, GeV/c^2 */
};

/* Set up the PUMAS medium callbacks of every region. */
void bt_geometry_init(struct bt_geometry *geometry);

/* Region index at each point (-1 outside the world). */
void bt_locate(const struct bt_geometry *geometry, long long n,
    const double *xyz, int *region);

/* Distance along `u` to the next boundary from each point (-1 if none). */
void bt_distance(const struct bt_geometry *geometry, long long n,
    const double *xyz, const double *u, double *distance);

/* Magnetic field [T] at each point. */
void bt_field(const struct bt_geometry *geometry, long long n,
    const double *xyz, double *b);

/* Data attached to a PUMAS context created with extra memory. */
struct bt_context_data {
        struct bt_rng rng;
        const struct bt_geometry *geometry;
        int navigating;
};
int bt_context_data_size(void);
void bt_context_setup(struct pumas_context *context,
    const struct bt_geometry *geometry);

/* Batch transport options. */
struct bt_options {
        int energy_loss;      /* PUMAS_MODE_CSDA, _MIXED, _STRAGGLED */
        int scattering;       /* PUMAS_MODE_MIXED or _DISABLED */
        int decay;            /* PUMAS_MODE_WEIGHTED or _DISABLED */
        int direction;        /* PUMAS_MODE_FORWARD or _BACKWARD */
        double accuracy;
        double energy_limit;  /* GeV: min (forward) or max (backward), <=0 off */
        int record;           /* record states at boundaries */
        unsigned long long seed;
};

/* Final statuses of a history. */
enum bt_status {
        BT_STATUS_REACHED_Z_MIN = 0,
        BT_STATUS_REACHED_Z_MAX = 1,
        BT_STATUS_LEFT_WORLD = 2,
        BT_STATUS_ENERGY_LIMIT = 3,
        BT_STATUS_STOPPED = 4,
        BT_STATUS_DECAYED = 5,
        BT_STATUS_WEIGHT_ZERO = 6,
        BT_STATUS_OUTSIDE_WORLD = 7,
        BT_STATUS_PUMAS_ERROR = 8,
        BT_STATUS_RECORD_OVERFLOW = 9
};

/* One recorded state. */
struct bt_record {
        long long history;
        int region;           /* region entered (or current) */
        int event;            /* PUMAS event flags */
        double position[3];
        double direction[3];
        double energy;
        double weight;
        double distance;
        double grammage;
};

/* Histories in, final states out. The state arrays are updated in place.
 * Records go to `records` (capacity `capacity`); `n_records` receives the
 * count. Returns the number of histories transported. */
long long bt_transport_batch(struct pumas_context *context,
    const struct bt_options *options, long long n,
    const long long *track, const long long *sample,
    double *charge, double *energy, double *weight,
    double *position, double *direction, double *distance,
    double *grammage, int *status,
    struct bt_record *records, long long capacity, long long *n_records);

/* Evaluate a PUMAS DCS [m^2/GeV per atom] at n (K, q) pairs. */
void bt_dcs_eval(pumas_dcs_t *dcs, double Z, double A, double mass,
    long long n, const double *K, const double *q, double *out);
