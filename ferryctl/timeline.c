/* A migration's timeline as an SVG picture, from `migrate status <id>`'s JSON: its rounds on a
 * time axis (pages sent, pages found dirty, Mbit/s, the throttle), the pause, the resume, the
 * self-announcement's frames, post-copy and the frames forwarded. */
#include "timeline.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/json.h"

#define WIDTH        1000
#define HEIGHT       460
#define LEFT         70
#define RIGHT        70
#define TOP          60
#define PLOT_HEIGHT  250
#define MAX_ROUNDS   64
#define ANNOUNCE_MAX 32

struct round_mark {
	unsigned long round;
	double start_ms, end_ms, mbps;
	double pages, dirty;
	unsigned long throttle;
};

/* The objects of the list under key, one after the other: each one's text into a buffer of its
 * own. Returns how many (at most max). */
static int list_objects(const char *json, const char *key, char **objects, int max)
{
	const char *p = json_find(json, key);
	int n = 0;

	if (p == NULL || *p != '[')
		return 0;
	for (p = json_skip_space(p + 1); *p == '{' && n < max; n++) {
		const char *end = json_skip(p);
		if (end == NULL || (objects[n] = strndup(p, (size_t)(end - p))) == NULL)
			break;
		p = json_skip_space(end);
		if (*p == ',')
			p = json_skip_space(p + 1);
	}
	return n;
}

/* Text for SVG: &, < and > escaped. */
static void svg_text(FILE *out, const char *text)
{
	for (; *text != '\0'; text++) {
		if (*text == '&')
			fputs("&amp;", out);
		else if (*text == '<')
			fputs("&lt;", out);
		else if (*text == '>')
			fputs("&gt;", out);
		else
			fputc(*text, out);
	}
}

/* A round step for an axis: 1, 2 or 5 times a power of ten, about max / 5. */
static double axis_step(double max)
{
	double raw = max / 5, power = pow(10, floor(log10(raw > 0 ? raw : 1)));

	return raw <= power       ? power
	       : raw <= 2 * power ? 2 * power
	       : raw <= 5 * power ? 5 * power
	                          : 10 * power;
}

int timeline_svg(const char *json, FILE *out)
{
	char *objects[MAX_ROUNDS];
	struct round_mark rounds[MAX_ROUNDS];
	char vm[64] = "", status[32] = "", peer[64] = "", mode[16] = "";
	int n = list_objects(json, "round_log", objects, MAX_ROUNDS);
	uint64_t id = 0, announce_rounds = 0, announce_initial = 0, announce_step = 0;
	uint64_t forwarded = 0, demanded = 0;

	if (n == 0)
		return -1;
	for (int i = 0; i < n; i++) {
		uint64_t value = 0;
		rounds[i] = (struct round_mark){
		        .start_ms = json_double(objects[i], "start_ms", 0),
		        .end_ms = json_double(objects[i], "end_ms", 0),
		        .mbps = json_double(objects[i], "mbps", 0),
		        .pages = json_double(objects[i], "pages", 0),
		        .dirty = json_double(objects[i], "dirty", 0),
		};
		if (json_u64(objects[i], "round", &value))
			rounds[i].round = (unsigned long)value;
		if (json_u64(objects[i], "throttle_percent", &value))
			rounds[i].throttle = (unsigned long)value;
		free(objects[i]);
	}
	json_string(json, "vm", vm, sizeof(vm));
	json_string(json, "status", status, sizeof(status));
	json_string(json, "peer", peer, sizeof(peer));
	json_string(json, "mode", mode, sizeof(mode));
	json_u64(json, "id", &id);
	json_u64(json, "announce_rounds", &announce_rounds);
	json_u64(json, "announce_initial_ms", &announce_initial);
	json_u64(json, "announce_step_ms", &announce_step);
	json_u64(json, "frames_forwarded", &forwarded);
	json_u64(json, "postcopy_pages_demanded", &demanded);
	double paused = json_double(json, "paused_at_ms", -1);
	double confirmed = json_double(json, "confirmed_at_ms", -1);
	double finished = json_double(json, "finished_ms", -1);
	double postcopy = json_double(json, "postcopy_start_ms", -1);
	double downtime = json_double(json, "downtime_ms", -1);

	/* The time axis runs to the last thing drawn: the end, the last announce, the last round. */
	double end = rounds[n - 1].end_ms;
	if (finished > end)
		end = finished;
	double announce_at[ANNOUNCE_MAX];
	unsigned int nb_announce = 0;
	if (confirmed >= 0) {
		/* The destination announces at the resume, then after initial, initial + step, ...
		 * (QEMU's announce_self schedule, which the HELLO carried). */
		double t = confirmed, gap = (double)announce_initial;
		for (uint64_t r = 0; r < announce_rounds && nb_announce < ANNOUNCE_MAX; r++) {
			announce_at[nb_announce++] = t;
			t += gap;
			gap += (double)announce_step;
		}
		if (nb_announce > 0 && announce_at[nb_announce - 1] > end)
			end = announce_at[nb_announce - 1];
	}
	end = end > 0 ? end * 1.03 : 1;
	double max_pages = 1, max_mbps = 1;
	for (int i = 0; i < n; i++) {
		max_pages = fmax(max_pages, fmax(rounds[i].pages, rounds[i].dirty));
		max_mbps = fmax(max_mbps, rounds[i].mbps);
	}
	double page_step = axis_step(max_pages), mbps_step = axis_step(max_mbps);
	max_pages = ceil(max_pages / page_step) * page_step;
	max_mbps = ceil(max_mbps / mbps_step) * mbps_step;
	const double plot_width = WIDTH - LEFT - RIGHT, bottom = TOP + PLOT_HEIGHT;
#define X(ms)    (LEFT + (ms) / end * plot_width)
#define Y(pages) (bottom - (pages) / max_pages * PLOT_HEIGHT)
#define YM(mbps) (bottom - (mbps) / max_mbps * PLOT_HEIGHT)

	fprintf(out,
	        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	        "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">\n"
	        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
	        WIDTH, HEIGHT, WIDTH, HEIGHT);
	fputs("<text x=\"70\" y=\"24\" font-size=\"16\" font-weight=\"bold\">", out);
	fprintf(out, "Migration %lu: ", (unsigned long)id);
	svg_text(out, vm);
	fputs(" to ", out);
	svg_text(out, peer);
	fputs(" (", out);
	svg_text(out, status);
	if (mode[0] != '\0') {
		fputs(", ", out);
		svg_text(out, mode);
	}
	fputs(")</text>\n", out);
	fprintf(out, "<text x=\"70\" y=\"44\">%d rounds", n);
	if (downtime >= 0)
		fprintf(out, ", downtime %.3f ms", downtime);
	if (forwarded > 0)
		fprintf(out, ", %lu frames forwarded to the destination", (unsigned long)forwarded);
	if (demanded > 0)
		fprintf(out, ", %lu pages demanded in post-copy", (unsigned long)demanded);
	fputs("</text>\n", out);

	/* Axes and grid: pages on the left, Mbit/s on the right, milliseconds below. */
	fprintf(out, "<g stroke=\"#ccc\" stroke-width=\"1\">\n");
	for (double p = 0; p <= max_pages + page_step / 2; p += page_step)
		fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", LEFT, Y(p),
		        LEFT + plot_width, Y(p));
	fputs("</g>\n", out);
	for (double p = 0; p <= max_pages + page_step / 2; p += page_step)
		fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0f</text>\n",
		        LEFT - 6, Y(p) + 4, p);
	for (double v = 0; v <= max_mbps + mbps_step / 2; v += mbps_step)
		fprintf(out,
		        "<text x=\"%.1f\" y=\"%.1f\" fill=\"#2a7\" "
		        "text-anchor=\"start\">%.0f</text>\n",
		        LEFT + plot_width + 6, YM(v) + 4, v);
	double time_step = axis_step(end);
	for (double t = 0; t <= end; t += time_step)
		fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n",
		        X(t), bottom + 16, t);
	fprintf(out,
	        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time since the start "
	        "(ms)</text>\n"
	        "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" "
	        "text-anchor=\"middle\">pages</text>\n"
	        "<text x=\"%d\" y=\"%.1f\" transform=\"rotate(90 %d %.1f)\" text-anchor=\"middle\" "
	        "fill=\"#2a7\">Mbit/s</text>\n",
	        LEFT + plot_width / 2, bottom + 34, TOP + PLOT_HEIGHT / 2.0,
	        TOP + PLOT_HEIGHT / 2.0, WIDTH - 12, TOP + PLOT_HEIGHT / 2.0, WIDTH - 12,
	        TOP + PLOT_HEIGHT / 2.0);
	fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
	        LEFT, bottom, LEFT + plot_width, bottom);

	/* The downtime, shaded, and post-copy, banded. */
	if (paused >= 0 && confirmed >= paused)
		fprintf(out,
		        "<rect class=\"pause\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
		        "fill=\"#f4c7c3\"/>\n",
		        X(paused), TOP, fmax(X(confirmed) - X(paused), 1.5), PLOT_HEIGHT);
	if (postcopy >= 0) {
		double stop = finished >= 0 ? finished : end;
		fprintf(out,
		        "<rect class=\"postcopy\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"10\" "
		        "fill=\"#b39ddb\"/><text x=\"%.1f\" y=\"%d\" "
		        "font-size=\"11\">post-copy</text>\n",
		        X(postcopy), TOP - 14, fmax(X(stop) - X(postcopy), 1.5), X(postcopy),
		        TOP - 18);
	}

	double last_label = -100;
	/* Each round: a bar of the pages it sent, a dot for the pages dirty at its end, its number;
	 * a step of its Mbit/s; its throttle when there was one. */
	for (int i = 0; i < n; i++) {
		const struct round_mark *r = &rounds[i];
		double x0 = X(r->start_ms), w = fmax(X(r->end_ms) - x0, 1.5);
		fprintf(out,
		        "<rect class=\"round\" data-round=\"%lu\" x=\"%.1f\" y=\"%.1f\" "
		        "width=\"%.1f\" "
		        "height=\"%.1f\" fill=\"#5b8def\" fill-opacity=\"0.75\" stroke=\"#2c5cc5\">"
		        "<title>round %lu: %.0f pages sent in %.1f ms, %.1f Mbit/s, %.0f dirty at "
		        "its "
		        "end, throttle %lu %%</title></rect>\n",
		        r->round, x0, Y(r->pages), w, bottom - Y(r->pages), r->round, r->pages,
		        r->end_ms - r->start_ms, r->mbps, r->dirty, r->throttle);
		fprintf(out,
		        "<circle class=\"dirty\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" "
		        "fill=\"#f28c28\"/>\n",
		        x0 + w, Y(r->dirty));
		/* A label where there is room for it beside the last one. */
		if (x0 + w / 2 - last_label >= 18) {
			last_label = x0 + w / 2;
			fprintf(out,
			        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
			        "font-size=\"10\">"
			        "r%lu</text>\n",
			        x0 + w / 2, Y(r->pages) - 4, r->round);
		}
		fprintf(out,
		        "<line class=\"mbps\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
		        "stroke=\"#2a7\" stroke-width=\"2\"/>\n",
		        x0, YM(r->mbps), x0 + w, YM(r->mbps));
		if (r->throttle > 0)
			fprintf(out,
			        "<text x=\"%.1f\" y=\"%.1f\" fill=\"#c62828\" font-size=\"10\" "
			        "text-anchor=\"middle\">%lu%%</text>\n",
			        x0 + w / 2, bottom - 4, r->throttle);
	}
	/* The pause, the resume (the destination's confirmation) and the announce frames. */
	if (paused >= 0)
		fprintf(out,
		        "<line class=\"paused\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" "
		        "stroke=\"#c62828\" stroke-width=\"2\" stroke-dasharray=\"5,3\"/>"
		        "<text x=\"%.1f\" y=\"%.1f\" fill=\"#c62828\" "
		        "text-anchor=\"end\">pause</text>\n",
		        X(paused), TOP, X(paused), bottom, X(paused) - 3, bottom + 50);
	if (confirmed >= 0)
		fprintf(out,
		        "<line class=\"resumed\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%.1f\" "
		        "stroke=\"#2e7d32\" stroke-width=\"2\"/>"
		        "<text x=\"%.1f\" y=\"%.1f\" fill=\"#2e7d32\">resume</text>\n",
		        X(confirmed), TOP, X(confirmed), bottom, X(confirmed) + 3, bottom + 50);
	for (unsigned int a = 0; a < nb_announce; a++)
		fprintf(out,
		        "<path class=\"announce\" d=\"M %.1f %.1f l -5 -9 l 10 0 z\" "
		        "fill=\"#6a1b9a\">"
		        "<title>announce frame %u (RARP), %.0f ms</title></path>\n",
		        X(announce_at[a]), (double)TOP, a + 1, announce_at[a]);

	/* The legend. */
	const double ly = HEIGHT - 28;
	fprintf(out,
	        "<g font-size=\"11\">"
	        "<rect x=\"70\" y=\"%.1f\" width=\"12\" height=\"10\" fill=\"#5b8def\"/>"
	        "<text x=\"86\" y=\"%.1f\">pages sent in the round</text>"
	        "<circle cx=\"240\" cy=\"%.1f\" r=\"4\" fill=\"#f28c28\"/>"
	        "<text x=\"248\" y=\"%.1f\">dirty at its end</text>"
	        "<line x1=\"350\" y1=\"%.1f\" x2=\"366\" y2=\"%.1f\" stroke=\"#2a7\" "
	        "stroke-width=\"2\"/>"
	        "<text x=\"370\" y=\"%.1f\">Mbit/s</text>"
	        "<rect x=\"430\" y=\"%.1f\" width=\"12\" height=\"10\" fill=\"#f4c7c3\"/>"
	        "<text x=\"446\" y=\"%.1f\">paused (downtime)</text>"
	        "<path d=\"M 570 %.1f l -5 -9 l 10 0 z\" fill=\"#6a1b9a\"/>"
	        "<text x=\"580\" y=\"%.1f\">announce frames</text>"
	        "<text x=\"700\" y=\"%.1f\" fill=\"#c62828\">n%% throttle</text>"
	        "</g>\n</svg>\n",
	        ly, ly + 9, ly + 5, ly + 9, ly + 5, ly + 5, ly + 9, ly, ly + 9, ly + 10, ly + 9,
	        ly + 9);
#undef X
#undef Y
#undef YM
	return ferror(out) ? -1 : 0;
}
