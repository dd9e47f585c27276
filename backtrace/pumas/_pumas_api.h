/*
 * Declarations of the PUMAS 1.2.3 C API used by backtrace.
 *
 * Written for backtrace from the public documentation of PUMAS
 * (V. Niess, "The PUMAS library", Comput. Phys. Commun. 279 (2022) 108438;
 * API reference of version 1.2 at pumas.readthedocs.io). Only the types are
 * declared here: the library is opened at run time with dlopen (see _core.c)
 * and every function is reached through the table `bt_pumas` below, so that a
 * user may point BACKTRACE_PUMAS_LIB at their own build of PUMAS.
 *
 * This file is valid C and is also fed verbatim to cffi's cdef: keep it free
 * of preprocessor directives.
 */

enum pumas_particle { PUMAS_PARTICLE_MUON = 0, PUMAS_PARTICLE_TAU = 1 };

enum pumas_property {
        PUMAS_PROPERTY_CROSS_SECTION = 0,
        PUMAS_PROPERTY_ELASTIC_CUTOFF_ANGLE = 1,
        PUMAS_PROPERTY_ELASTIC_PATH = 2,
        PUMAS_PROPERTY_STOPPING_POWER = 3,
        PUMAS_PROPERTY_RANGE = 4,
        PUMAS_PROPERTY_KINETIC_ENERGY = 5,
        PUMAS_PROPERTY_MAGNETIC_ROTATION = 6,
        PUMAS_PROPERTY_TRANSPORT_PATH = 7,
        PUMAS_PROPERTY_PROPER_TIME = 8
};

/* Mode values overlap in PUMAS (e.g. CSDA == WEIGHTED == FORWARD == 0): they
 * are plain ints of a `enum pumas_mode`. */
enum pumas_mode { PUMAS_MODE_DISABLED = -1, PUMAS_MODE_CSDA = 0,
        PUMAS_MODE_MIXED = 1, PUMAS_MODE_STRAGGLED = 2 };

enum pumas_return {
        PUMAS_RETURN_SUCCESS = 0,
        PUMAS_RETURN_ACCURACY_ERROR = 1,
        PUMAS_RETURN_END_OF_FILE = 2,
        PUMAS_RETURN_DECAY_ERROR = 3,
        PUMAS_RETURN_DENSITY_ERROR = 4,
        PUMAS_RETURN_DIRECTION_ERROR = 5,
        PUMAS_RETURN_INCOMPLETE_FILE = 6,
        PUMAS_RETURN_INDEX_ERROR = 7,
        PUMAS_RETURN_PHYSICS_ERROR = 8,
        PUMAS_RETURN_INTERNAL_ERROR = 9,
        PUMAS_RETURN_IO_ERROR = 10,
        PUMAS_RETURN_FORMAT_ERROR = 11,
        PUMAS_RETURN_MEDIUM_ERROR = 12,
        PUMAS_RETURN_MEMORY_ERROR = 13,
        PUMAS_RETURN_MODEL_ERROR = 14,
        PUMAS_RETURN_MISSING_LIMIT = 15,
        PUMAS_RETURN_MISSING_RANDOM = 16,
        PUMAS_RETURN_PATH_ERROR = 17,
        PUMAS_RETURN_RAISE_ERROR = 18,
        PUMAS_RETURN_TOO_LONG = 19,
        PUMAS_RETURN_UNDEFINED_MDF = 20,
        PUMAS_RETURN_UNKNOWN_ELEMENT = 21,
        PUMAS_RETURN_UNKNOWN_MATERIAL = 22,
        PUMAS_RETURN_UNKNOWN_PARTICLE = 23,
        PUMAS_RETURN_VALUE_ERROR = 24,
        PUMAS_N_RETURNS = 25
};

enum pumas_event {
        PUMAS_EVENT_NONE = 0,
        PUMAS_EVENT_LIMIT_ENERGY = 1,
        PUMAS_EVENT_LIMIT_DISTANCE = 2,
        PUMAS_EVENT_LIMIT_GRAMMAGE = 4,
        PUMAS_EVENT_LIMIT_TIME = 8,
        PUMAS_EVENT_LIMIT = 15,
        PUMAS_EVENT_MEDIUM = 16,
        PUMAS_EVENT_VERTEX_BREMSSTRAHLUNG = 32,
        PUMAS_EVENT_VERTEX_PAIR_CREATION = 64,
        PUMAS_EVENT_VERTEX_PHOTONUCLEAR = 128,
        PUMAS_EVENT_VERTEX_DELTA_RAY = 256,
        PUMAS_EVENT_VERTEX_DEL = 480,
        PUMAS_EVENT_VERTEX_COULOMB = 512,
        PUMAS_EVENT_VERTEX_DECAY = 1024,
        PUMAS_EVENT_VERTEX = 2016,
        PUMAS_EVENT_WEIGHT = 2048,
        PUMAS_EVENT_START = 4096,
        PUMAS_EVENT_STOP = 8192
};

enum pumas_process {
        PUMAS_PROCESS_BREMSSTRAHLUNG = 0,
        PUMAS_PROCESS_PAIR_PRODUCTION = 1,
        PUMAS_PROCESS_PHOTONUCLEAR = 2
};

enum pumas_constant {
        PUMAS_CONSTANT_ALPHA_EM = 0,
        PUMAS_CONSTANT_AVOGADRO_NUMBER = 1,
        PUMAS_CONSTANT_BOHR_RADIUS = 2,
        PUMAS_CONSTANT_ELECTRON_MASS = 3,
        PUMAS_CONSTANT_ELECTRON_RADIUS = 4,
        PUMAS_CONSTANT_HBAR_C = 5,
        PUMAS_CONSTANT_MUON_C_TAU = 6,
        PUMAS_CONSTANT_MUON_MASS = 7,
        PUMAS_CONSTANT_NEUTRON_MASS = 8,
        PUMAS_CONSTANT_PION_MASS = 9,
        PUMAS_CONSTANT_PROTON_MASS = 10,
        PUMAS_CONSTANT_TAU_C_TAU = 11,
        PUMAS_CONSTANT_TAU_MASS = 12,
        PUMAS_N_CONSTANTS = 13
};

enum pumas_step { PUMAS_STEP_CHECK = 0, PUMAS_STEP_RAW = 1 };

/* Monte Carlo state: energy [GeV], distance [m], grammage [kg/m^2],
 * time [m/c], position [m], unit direction of the momentum. */
struct pumas_state {
        double charge;
        double energy;
        double distance;
        double grammage;
        double time;
        double weight;
        double position[3];
        double direction[3];
        int decayed;
};

/* Local properties of a medium: density [kg/m^3], magnetic field [T]. */
struct pumas_locals {
        double density;
        double magnet[3];
};

struct pumas_medium;
typedef double pumas_locals_cb(struct pumas_medium *medium,
    struct pumas_state *state, struct pumas_locals *locals);

struct pumas_medium {
        int material;
        pumas_locals_cb *locals;
};

struct pumas_frame {
        struct pumas_state state;
        struct pumas_medium *medium;
        enum pumas_event event;
        struct pumas_frame *next;
};

struct pumas_context;
typedef void pumas_recorder_cb(struct pumas_context *context,
    struct pumas_state *state, struct pumas_medium *medium,
    enum pumas_event event);

struct pumas_recorder {
        struct pumas_frame *first;
        int length;
        int period;
        pumas_recorder_cb *record;
        void *user_data;
};

typedef enum pumas_step pumas_medium_cb(struct pumas_context *context,
    struct pumas_state *state, struct pumas_medium **medium, double *step);

typedef void pumas_function_t(void);
typedef void pumas_handler_cb(enum pumas_return rc, pumas_function_t *caller,
    const char *message);
typedef double pumas_random_cb(struct pumas_context *context);

struct pumas_context_mode {
        int energy_loss;
        int decay;
        int direction;
        int scattering;
};

struct pumas_context_limit {
        double energy;
        double distance;
        double grammage;
        double time;
};

struct pumas_context {
        pumas_medium_cb *medium;
        pumas_random_cb *random;
        struct pumas_recorder *recorder;
        void *user_data;
        struct pumas_context_mode mode;
        int event;
        struct pumas_context_limit limit;
        double accuracy;
};

struct pumas_physics;
typedef double pumas_dcs_t(double Z, double A, double m, double K, double q);

struct pumas_physics_settings {
        double cutoff;
        double elastic_ratio;
        const char *bremsstrahlung;
        const char *pair_production;
        const char *photonuclear;
        int n_energies;
        double *energy;
        int update;
        int dry;
};

/* The PUMAS API, as a table of function pointers filled by bt_load(). Each
 * member has the name and signature of the PUMAS 1.2.3 function. */
struct bt_pumas_api {
        enum pumas_return (*pumas_physics_create)(struct pumas_physics **,
            enum pumas_particle, const char *, const char *,
            const struct pumas_physics_settings *);
        void (*pumas_physics_destroy)(struct pumas_physics **);
        enum pumas_return (*pumas_physics_dump)(
            const struct pumas_physics *, void *);
        enum pumas_return (*pumas_physics_load)(struct pumas_physics **, void *);
        double (*pumas_physics_cutoff)(const struct pumas_physics *);
        double (*pumas_physics_elastic_ratio)(const struct pumas_physics *);
        enum pumas_return (*pumas_context_transport)(struct pumas_context *,
            struct pumas_state *, enum pumas_event *, struct pumas_medium **);
        enum pumas_return (*pumas_physics_print)(const struct pumas_physics *,
            void *, const char *, const char *);
        void (*pumas_version)(int *, int *, int *);
        enum pumas_return (*pumas_physics_particle)(
            const struct pumas_physics *, enum pumas_particle *, double *,
            double *);
        const char *(*pumas_error_function)(pumas_function_t *);
        void (*pumas_error_handler_set)(pumas_handler_cb *);
        pumas_handler_cb *(*pumas_error_handler_get)(void);
        void (*pumas_error_catch)(int);
        enum pumas_return (*pumas_error_raise)(void);
        enum pumas_return (*pumas_context_create)(struct pumas_context **,
            const struct pumas_physics *, int);
        enum pumas_return (*pumas_context_random_seed_set)(
            struct pumas_context *, const unsigned long *);
        enum pumas_return (*pumas_context_random_seed_get)(
            struct pumas_context *, unsigned long *);
        enum pumas_return (*pumas_context_random_load)(
            struct pumas_context *, void *);
        enum pumas_return (*pumas_context_random_dump)(
            struct pumas_context *, void *);
        void (*pumas_context_destroy)(struct pumas_context **);
        const struct pumas_physics *(*pumas_context_physics_get)(
            const struct pumas_context *);
        enum pumas_return (*pumas_physics_property_range)(
            const struct pumas_physics *, int, int, double, double *);
        enum pumas_return (*pumas_physics_property_proper_time)(
            const struct pumas_physics *, int, int, double, double *);
        enum pumas_return (*pumas_physics_property_magnetic_rotation)(
            const struct pumas_physics *, int, double, double *);
        enum pumas_return (*pumas_physics_property_kinetic_energy)(
            const struct pumas_physics *, int, int, double, double *);
        enum pumas_return (*pumas_physics_property_stopping_power)(
            const struct pumas_physics *, int, int, double, double *);
        enum pumas_return (*pumas_physics_property_energy_straggling)(
            const struct pumas_physics *, int, double, double *);
        enum pumas_return (*pumas_physics_property_elastic_cutoff_angle)(
            const struct pumas_physics *, int, double, double *);
        enum pumas_return (*pumas_physics_property_elastic_path)(
            const struct pumas_physics *, int, double, double *);
        enum pumas_return (*pumas_physics_property_transport_path)(
            const struct pumas_physics *, int, int, double, double *);
        enum pumas_return (*pumas_physics_property_cross_section)(
            const struct pumas_physics *, int, double, double *);
        int (*pumas_physics_element_length)(const struct pumas_physics *);
        enum pumas_return (*pumas_physics_element_properties)(
            const struct pumas_physics *, int, double *, double *, double *);
        enum pumas_return (*pumas_physics_element_name)(
            const struct pumas_physics *, int, const char **);
        enum pumas_return (*pumas_physics_element_index)(
            const struct pumas_physics *, const char *, int *);
        enum pumas_return (*pumas_physics_material_name)(
            const struct pumas_physics *, int, const char **);
        enum pumas_return (*pumas_physics_material_index)(
            const struct pumas_physics *, const char *, int *);
        int (*pumas_physics_material_length)(const struct pumas_physics *);
        enum pumas_return (*pumas_physics_material_properties)(
            const struct pumas_physics *, int, int *, double *, double *,
            int *, double *);
        int (*pumas_physics_composite_length)(const struct pumas_physics *);
        enum pumas_return (*pumas_physics_composite_update)(
            struct pumas_physics *, int, const double *);
        enum pumas_return (*pumas_physics_composite_properties)(
            const struct pumas_physics *, int, int *, int *, double *);
        enum pumas_return (*pumas_physics_table_value)(
            const struct pumas_physics *, enum pumas_property, int, int, int,
            double *);
        int (*pumas_physics_table_length)(const struct pumas_physics *);
        enum pumas_return (*pumas_physics_table_index)(
            const struct pumas_physics *, enum pumas_property, int, int,
            double, int *);
        enum pumas_return (*pumas_recorder_create)(
            struct pumas_recorder **, int);
        void (*pumas_recorder_clear)(struct pumas_recorder *);
        void (*pumas_recorder_destroy)(struct pumas_recorder **);
        void (*pumas_memory_allocator)(void *);
        void (*pumas_memory_reallocator)(void *);
        void (*pumas_memory_deallocator)(void *);
        enum pumas_return (*pumas_physics_dcs)(const struct pumas_physics *,
            enum pumas_process, const char **, pumas_dcs_t **);
        enum pumas_return (*pumas_constant)(enum pumas_constant, double *);
        enum pumas_return (*pumas_dcs_register)(
            enum pumas_process, const char *, pumas_dcs_t *);
        enum pumas_return (*pumas_dcs_get)(
            enum pumas_process, const char *, pumas_dcs_t **);
        const char *(*pumas_dcs_default)(enum pumas_process);
        enum pumas_return (*pumas_dcs_range)(enum pumas_process, double,
            double, double, double *, double *);
        double (*pumas_elastic_dcs)(double, double, double, double, double);
        double (*pumas_elastic_path)(int, double, double, double, double);
        double (*pumas_electronic_dcs)(
            double, double, double, double, double);
        double (*pumas_electronic_density_effect)(int, const double *,
            const double *, const double *, double, double, double);
        double (*pumas_electronic_stopping_power)(int, const double *,
            const double *, const double *, double, double, double, double);
};
