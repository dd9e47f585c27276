/*
 * Reference C driver for the benchmarks: transports the histories of a
 * binary job file through the same navigator (backtrace's _shim.c) with
 * PUMAS, without Python. Built on the fly by benchmarks/bench_transport.py:
 *   gcc -O3 c_driver.c _shim.c -ldl -lm (see backtrace/pumas/driver.py)
 * Usage: c_driver LIBPUMAS PHYSICS_CACHE OFFSET JOB_FILE REPEAT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "_pumas_api.h"
#include "_shim.h"

static void *read_block(FILE *f, size_t size)
{
        void *p = malloc(size ? size : 1);
        if (size && fread(p, 1, size, f) != size) {
                fprintf(stderr, "truncated job file\n");
                exit(1);
        }
        return p;
}

int main(int argc, char *argv[])
{
        if (argc < 6) {
                fprintf(stderr, "usage: %s LIB CACHE OFFSET JOB REPEAT\n", argv[0]);
                return 1;
        }
        char err[512];
        if (bt_load(argv[1], err, sizeof(err)) != 0) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        struct pumas_physics *physics = NULL;
        if (bt_physics_load(&physics, argv[2], atol(argv[3])) != 0) {
                fprintf(stderr, "physics: %s\n", bt_error_message());
                return 1;
        }
        FILE *f = fopen(argv[4], "rb");
        if (f == NULL) return 1;
        struct bt_geometry g;
        struct bt_options o;
        long long n;
        if (fread(&g, sizeof(g), 1, f) != 1 || fread(&o, sizeof(o), 1, f) != 1 ||
            fread(&n, sizeof(n), 1, f) != 1)
                return 1;
        int n_regions;
        if (fread(&n_regions, sizeof(int), 1, f) != 1) return 1;
        g.slabs = read_block(f, sizeof(struct bt_slab) * g.n_slabs);
        g.regions = read_block(f, sizeof(struct bt_region) * n_regions);
        g.n_maps = 0;
        g.maps = NULL;
        long long *track = read_block(f, sizeof(long long) * n);
        double *charge0 = read_block(f, sizeof(double) * n);
        double *energy0 = read_block(f, sizeof(double) * n);
        double *weight0 = read_block(f, sizeof(double) * n);
        double *position0 = read_block(f, sizeof(double) * 3 * n);
        double *direction0 = read_block(f, sizeof(double) * 3 * n);
        fclose(f);
        bt_geometry_init(&g);

        struct pumas_context *context = NULL;
        bt_pumas.pumas_context_create(&context, physics,
            bt_context_data_size());
        bt_context_setup(context, &g);
        const int repeat = atoi(argv[5]);
        double *charge = malloc(sizeof(double) * n);
        double *energy = malloc(sizeof(double) * n);
        double *weight = malloc(sizeof(double) * n);
        double *position = malloc(sizeof(double) * 3 * n);
        double *direction = malloc(sizeof(double) * 3 * n);
        double *distance = malloc(sizeof(double) * n);
        double *grammage = malloc(sizeof(double) * n);
        int *status = malloc(sizeof(int) * n);
        long long capacity = o.record ? n * 512 : 0;
        struct bt_record *records =
            malloc(sizeof(struct bt_record) * (capacity ? capacity : 1));
        double best = 1e300;
        long long reached = 0;
        for (int r = 0; r < repeat; r++) {
                memcpy(charge, charge0, sizeof(double) * n);
                memcpy(energy, energy0, sizeof(double) * n);
                memcpy(weight, weight0, sizeof(double) * n);
                memcpy(position, position0, sizeof(double) * 3 * n);
                memcpy(direction, direction0, sizeof(double) * 3 * n);
                long long n_rec = 0;
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                bt_transport_batch(context, &o, n, track, NULL, charge, energy,
                    weight, position, direction, distance, grammage, status,
                    records, capacity, &n_rec);
                clock_gettime(CLOCK_MONOTONIC, &t1);
                const double dt = (t1.tv_sec - t0.tv_sec) +
                    1e-9 * (t1.tv_nsec - t0.tv_nsec);
                if (dt < best) best = dt;
                reached = 0;
                for (long long i = 0; i < n; i++) reached += (status[i] == 0) ||
                    (status[i] == 1);
        }
        printf("{\"histories\": %lld, \"seconds\": %.6f, \"per_s\": %.1f, "
               "\"ended_on_a_plane\": %lld}\n", n, best, n / best, reached);
        return 0;
}
