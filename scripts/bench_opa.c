/* OPA side of the policy benchmark: loads libopabridge.so (OPA behind a C
 * interface, from the PyPI wheel opa-golib-python-bindings), adds the
 * bundled policies, and times the same decision our benchmark times: the
 * alert policy on the payload, then every action round's input, timed
 * inside the library calls. Prints JSON. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef uint64_t (*opa_new_t)(void);
typedef char *(*opa_add_policy_t)(uint64_t, const char *, const char *);
typedef char *(*opa_eval_document_t)(uint64_t, const char *, const char *, int, int);
typedef void (*opa_free_t)(void *);

static opa_free_t opa_free;

static char *slurp(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", path); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *text = malloc(n + 1);
    if (fread(text, 1, n, f) != (size_t)n) { fprintf(stderr, "cannot read %s\n", path); exit(2); }
    text[n] = 0;
    fclose(f);
    return text;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* Fails loudly on an error envelope; returns whether the result was defined. */
static void check(char *envelope, const char *what) {
    if (!envelope) { fprintf(stderr, "%s: NULL\n", what); exit(3); }
    if (strstr(envelope, "\"error\":{")) { fprintf(stderr, "%s: %s\n", what, envelope); exit(3); }
    opa_free(envelope);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s LIB INPUT_DIR ITERATIONS\n", argv[0]); return 2; }
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) { fprintf(stderr, "%s\n", dlerror()); return 2; }
    opa_new_t opa_new = (opa_new_t)dlsym(lib, "OpaNew");
    opa_add_policy_t add_policy = (opa_add_policy_t)dlsym(lib, "OpaAddPolicy");
    opa_eval_document_t eval_document = (opa_eval_document_t)dlsym(lib, "OpaEvalDocument");
    opa_free = (opa_free_t)dlsym(lib, "OpaFreeString");
    const char *dir = argv[2];
    int iterations = atoi(argv[3]);

    char *alert_policy = slurp(dir, "policies_alert_matano.rego");
    char *action_policy = slurp(dir, "policies_action.rego");
    char *alert_input = slurp(dir, "alert_input.json");
    /* The module the loader adds for `import data.escape`, when a policy imports it. */
    char *escape_policy = NULL;
    {
        char path[4096];
        snprintf(path, sizeof path, "%s/escape_functions.rego", dir);
        FILE *f = fopen(path, "rb");
        if (f) {
            fclose(f);
            escape_policy = slurp(dir, "escape_functions.rego");
        }
    }
    char *rounds[64];
    int round_count = 0;
    for (; round_count < 64; round_count++) {
        char name[64], path[4096];
        snprintf(name, sizeof name, "action_input_%d.json", round_count);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "rb");
        if (!f) break;
        fclose(f);
        rounds[round_count] = slurp(dir, name);
    }

    /* Compile: a new engine, both policies, the first evaluation of each rule. */
    double start = now_us();
    uint64_t engine = opa_new();
    check(add_policy(engine, "alert_matano.rego", alert_policy), "add alert policy");
    check(add_policy(engine, "action.rego", action_policy), "add action policy");
    if (escape_policy) check(add_policy(engine, "escape_functions.rego", escape_policy), "add escape functions");
    check(eval_document(engine, "alert.matano.alert", alert_input, 0, 0), "first alert eval");
    check(eval_document(engine, "action.run", rounds[0], 0, 0), "first action eval");
    double compile_ms = (now_us() - start) / 1000.0;

    for (int i = 0; i < iterations / 10; i++) {
        check(eval_document(engine, "alert.matano.alert", alert_input, 0, 0), "alert");
        for (int r = 0; r < round_count; r++) check(eval_document(engine, "action.run", rounds[r], 0, 0), "action");
    }
    double *times = malloc(sizeof(double) * iterations);
    for (int i = 0; i < iterations; i++) {
        double t = now_us();
        check(eval_document(engine, "alert.matano.alert", alert_input, 0, 0), "alert");
        for (int r = 0; r < round_count; r++) check(eval_document(engine, "action.run", rounds[r], 0, 0), "action");
        times[i] = now_us() - t;
    }
    qsort(times, iterations, sizeof(double), cmp);
    printf("{\"compile_ms\": %.3f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"rounds\": %d}\n", compile_ms,
           times[iterations / 2], times[(int)((iterations - 1) * 0.99)], round_count);
    return 0;
}
