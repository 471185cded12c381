/* The synthetic VM backend: a deterministic workload whose writes are a pure function of its
 * state (seed, step counter, pattern, working set), at a rate that only decides how many steps
 * run per second. Its vCPU state is that workload state. */
#include "vm_synthetic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_SECOND     1000000000ull
#define DEFAULT_MAX_STEPS 4096

struct synthetic {
	struct vm_workload workload;
	uint64_t step;
	struct vm_pacing pacing;
};

static const char *const pattern_names[] = {
        [VM_PATTERN_UNIFORM] = "uniform",
        [VM_PATTERN_HOTCOLD] = "hotcold",
        [VM_PATTERN_SEQUENTIAL] = "sequential",
};

const char *vm_pattern_name(enum vm_pattern pattern)
{
	return pattern_names[pattern];
}

int vm_pattern_parse(const char *text, enum vm_pattern *pattern)
{
	for (unsigned int p = 0; p < sizeof(pattern_names) / sizeof(pattern_names[0]); p++) {
		if (strcmp(text, pattern_names[p]) == 0) {
			*pattern = (enum vm_pattern)p;
			return 0;
		}
	}
	return -EINVAL;
}

/* splitmix64: each step's randomness from (seed, step) alone. */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void vm_synthetic_disk_block(uint64_t seed, uint64_t step, uint8_t out[VM_SYNTHETIC_DISK_BLOCK])
{
	uint64_t base = mix(seed ^ mix(step ^ 0x6469736bull)); /* "disk" */

	for (unsigned int w = 0; w < VM_SYNTHETIC_DISK_BLOCK / sizeof(uint64_t); w++) {
		uint64_t word = mix(base + w);
		memcpy(out + w * sizeof(word), &word, sizeof(word));
	}
}

/* One step: which page, which word, which value. A pure function of the workload and step, so a
 * step a post-copy fault stalls is taken the same once its page arrives. Returns false if it
 * stalled. */
static bool step_once(struct machine *vm, struct synthetic *s, uint64_t now_ns)
{
	const struct vm_workload *w = &s->workload;
	uint64_t r = mix(w->seed ^ mix(s->step));
	uint64_t ws = w->working_set_pages;
	uint64_t page;

	switch (w->pattern) {
	case VM_PATTERN_SEQUENTIAL:
		page = s->step % ws;
		break;
	case VM_PATTERN_HOTCOLD: {
		uint64_t hot = ws / 10 != 0 ? ws / 10 : 1;
		if (r % 10 < 9 || hot == ws)
			page = (r >> 8) % hot;
		else
			page = hot + (r >> 8) % (ws - hot);
		break;
	}
	default:
		page = (r >> 8) % ws;
		break;
	}
	if (!machine_access(vm, page, now_ns))
		return false;
	machine_write64(vm, page, (uint32_t)(mix(r) % VM_PAGE_SIZE), r ^ s->step);
	s->step++;
	return true;
}

void vm_synthetic_steps(struct machine *vm, uint64_t n)
{
	struct synthetic *s = vm->backend;

	for (uint64_t i = 0; i < n && step_once(vm, s, 0); i++)
		;
}

static int synthetic_steps(struct machine *vm, uint64_t n)
{
	vm_synthetic_steps(vm, n);
	return 0;
}

const struct vm_workload *vm_synthetic_workload(const struct machine *vm)
{
	return &((const struct synthetic *)vm->backend)->workload;
}

uint64_t vm_synthetic_step(const struct machine *vm)
{
	return ((const struct synthetic *)vm->backend)->step;
}

void vm_workload_fill(struct machine *vm, const struct vm_workload *w)
{
	uint64_t pages = w->working_set_pages * w->fill_percent / 100;

	for (uint64_t page = 0; page < pages; page++)
		for (uint32_t offset = 0; offset < VM_PAGE_SIZE; offset += 8)
			machine_write64(vm, page, offset,
			                mix(w->seed ^ (page * VM_PAGE_SIZE + offset)));
}

static int synthetic_init(struct machine *vm, const void *config)
{
	const struct vm_workload *w = config;
	struct synthetic *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	if (w != NULL)
		s->workload = *w;
	if (s->workload.working_set_pages == 0 || s->workload.working_set_pages > vm->nb_pages)
		s->workload.working_set_pages = vm->nb_pages;
	if (s->workload.max_steps_per_run == 0)
		s->workload.max_steps_per_run = DEFAULT_MAX_STEPS;
	if ((unsigned int)s->workload.pattern > VM_PATTERN_SEQUENTIAL) {
		free(s);
		return -EINVAL;
	}
	if (s->workload.fill_percent > 100) {
		free(s);
		return -EINVAL;
	}
	vm->backend = s;
	vm_workload_fill(vm, &s->workload);
	return 0;
}

static void synthetic_fini(struct machine *vm)
{
	free(vm->backend);
	vm->backend = NULL;
}

uint64_t vm_pacing_steps(struct vm_pacing *p, const struct machine *vm, const struct vm_workload *w,
                         uint64_t now_ns)
{
	uint64_t steps = w->max_steps_per_run;

	if (w->idle)
		return 0;
	uint64_t base = w->rate;
	if (base == 0 && vm->throttle_percent != 0) {
		/* A VM at "max" runs as fast as its share of the core allows; throttled, its
		 * share and so its speed shrink, as QEMU's throttle sleeps a vCPU: a rate of
		 * (100 - throttle)% of what it ran at before. */
		if (p->max_rate == 0)
			p->max_rate = vm->stats.dirty_rate != 0 ? vm->stats.dirty_rate : 1000000;
		base = p->max_rate;
	} else if (base == 0) {
		p->max_rate = 0;
		p->last_run_ns = 0;
	}
	if (base != 0) {
		if (p->last_run_ns == 0)
			p->last_run_ns = now_ns;
		p->credit_ns += now_ns - p->last_run_ns;
		p->last_run_ns = now_ns;
		uint64_t rate = base * (100 - vm->throttle_percent) / 100;
		if (rate == 0)
			return 0;
		uint64_t owed = p->credit_ns * rate / NS_PER_SECOND;
		if (owed < steps)
			steps = owed;
		p->credit_ns -= steps * NS_PER_SECOND / rate;
		/* A long pause is not paid back in one burst. */
		if (p->credit_ns > NS_PER_SECOND)
			p->credit_ns = NS_PER_SECOND;
	}
	return steps;
}

static uint64_t synthetic_run(struct machine *vm, uint64_t now_ns)
{
	struct synthetic *s = vm->backend;
	uint64_t steps = vm_pacing_steps(&s->pacing, vm, &s->workload, now_ns);
	uint64_t taken = 0;

	while (taken < steps && step_once(vm, s, now_ns))
		taken++;
	return taken;
}

static size_t synthetic_save_state(const struct machine *vm, void *buf)
{
	const struct synthetic *s = vm->backend;
	struct vm_synthetic_state st = {
	        .magic = VM_SYNTHETIC_MAGIC,
	        .pattern = (uint32_t)s->workload.pattern,
	        .seed = s->workload.seed,
	        .step = s->step,
	        .working_set_pages = s->workload.working_set_pages,
	        .rate = s->workload.rate,
	        .max_steps_per_run = s->workload.max_steps_per_run,
	        .flags = s->workload.idle ? VM_SYNTHETIC_IDLE : 0,
	};
	/* Little endian on the wire; this machine is too, and a big-endian port swaps here. */
	memcpy(buf, &st, sizeof(st));
	return sizeof(st);
}

static int synthetic_load_state(struct machine *vm, const void *buf, size_t len)
{
	struct synthetic *s = vm->backend;
	struct vm_synthetic_state st;

	if (len != sizeof(st))
		return -EINVAL;
	memcpy(&st, buf, sizeof(st));
	if (st.magic != VM_SYNTHETIC_MAGIC || st.pattern > VM_PATTERN_SEQUENTIAL ||
	    st.working_set_pages == 0 || st.working_set_pages > vm->nb_pages ||
	    st.max_steps_per_run == 0)
		return -EINVAL;
	s->workload.pattern = (enum vm_pattern)st.pattern;
	s->workload.seed = st.seed;
	s->workload.working_set_pages = st.working_set_pages;
	s->workload.rate = st.rate;
	s->workload.max_steps_per_run = st.max_steps_per_run;
	s->workload.idle = (st.flags & VM_SYNTHETIC_IDLE) != 0;
	s->step = st.step;
	s->pacing = (struct vm_pacing){0};
	return 0;
}

const struct machine_ops vm_synthetic_ops = {
        .name = "synthetic",
        .init = synthetic_init,
        .fini = synthetic_fini,
        .run = synthetic_run,
        .save_state = synthetic_save_state,
        .load_state = synthetic_load_state,
        .step = vm_synthetic_step,
        .steps = synthetic_steps,
        .workload = vm_synthetic_workload,
};

int vm_workload_parse(const char *spec, struct vm_workload *workload)
{
	char text[128], *save = NULL;

	memset(workload, 0, sizeof(*workload));
	workload->seed = 1;
	if (strlen(spec) >= sizeof(text))
		return -EINVAL;
	snprintf(text, sizeof(text), "%s", spec);
	char *item = strtok_r(text, ",", &save);
	if (item == NULL || vm_pattern_parse(item, &workload->pattern) < 0)
		return -EINVAL;
	while ((item = strtok_r(NULL, ",", &save)) != NULL) {
		char *eq = strchr(item, '='), *end;
		if (eq == NULL)
			return -EINVAL;
		*eq = '\0';
		const char *value = eq + 1;
		if (strcmp(item, "rate") == 0 && strcmp(value, "max") == 0) {
			workload->rate = 0;
			continue;
		}
		unsigned long long n = strtoull(value, &end, 10);
		if (*value == '\0' || *end != '\0')
			return -EINVAL;
		if (strcmp(item, "rate") == 0 && n == 0)
			workload->idle = true;
		else if (strcmp(item, "rate") == 0)
			workload->rate = n;
		else if (strcmp(item, "ws") == 0 && n > 0)
			workload->working_set_pages = n;
		else if (strcmp(item, "seed") == 0)
			workload->seed = n;
		else if (strcmp(item, "fill") == 0 && n <= 100)
			workload->fill_percent = (uint32_t)n;
		else
			return -EINVAL;
	}
	return 0;
}
