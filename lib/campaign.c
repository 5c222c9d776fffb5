/*
 * campaign - load and check conf/campaigns/NAME.conf. See campaign.h.
 */
#include "campaign.h"
#include "cond.h"
#include "lead.h"
#include "mime.h"
#include "sms.h"
#include "tmpl.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const channels[] = { "email", "sms", NULL };

#define D(f) offsetof(struct campaign_def, f)
static const struct conf_key campaign_keys[] = {
	{ "from", CONF_STR, D(from_src), "", 0, 0, NULL, 0 },
	{ "reply_to", CONF_STR, D(reply_to_src), "", 0, 0, NULL, 0 },
	{ "subject", CONF_STR, D(subject_src), "", 0, 0, NULL, 0 },
	{ "preheader", CONF_STR, D(preheader_src), "", 0, 0, NULL, 0 },
	{ "html", CONF_STR, D(html_name), "", 0, 0, NULL, 0 },
	{ "text", CONF_STR, D(text_name), "", 0, 0, NULL, 0 },
	{ "lists", CONF_STRLIST, D(lists), "", 0, 0, NULL, 0 },
	{ "audience", CONF_STR, D(audience_src), "", 0, 0, NULL, 0 },
	{ "schedule", CONF_STR, D(schedule_src), "manual", 0, 0, NULL, 0 },
	{ "rate", CONF_INT, D(rate), "0", 0, 1000000, NULL, 0 },
	{ "channel", CONF_ENUM, D(channel_src), "email", 0, 0, channels, 0 },
	{ "quiet_hours", CONF_STR, D(quiet_src), "21:00-08:00", 0, 0, NULL, 0 },
	{ "time_zone", CONF_STR, D(time_zone), "UTC", 0, 0, NULL, 0 },
	{ "gateway", CONF_STR, D(gateway), "", 0, 0, NULL, 0 },
	{ "max_segments", CONF_INT, D(max_segments), "2", 1, SMS_MAX_SEGMENTS,
	  NULL, 0 },
	{ NULL, 0, 0, NULL, 0, 0, NULL, 0 }
};
#undef D

static struct cfgfile_node *
node_of(struct cfgfile_node *root, const char *key)
{
	for (struct cfgfile_node *n = root->child; n; n = n->next)
		if (strcmp(n->key, key) == 0 && n->kind == CFGFILE_VALUE)
			return n;
	return NULL;
}

/* The byte offset of 1-based line:col in text. */
static size_t
offset_of(const char *text, int line, int col)
{
	size_t off = 0;

	for (int l = 1; l < line && text[off]; off++)
		if (text[off] == '\n')
			l++;
	return off + (size_t)(col > 0 ? col - 1 : 0);
}

static const struct cfgfile_pos *
pos_of(struct cfgfile_node *root, const char *key, const struct cfgfile_pos *file)
{
	for (struct cfgfile_node *n = root->child; n; n = n->next)
		if (strcmp(n->key, key) == 0)
			return n->kind == CFGFILE_VALUE ? &n->vpos : &n->pos;
	return file;
}

/* UTC offset of zone at t, or 0 for UTC. */
static long
offset_at(const char *zone, time_t t)
{
	struct tm lt;
	long off = 0;

	if (*zone)
		cond_localtime(zone, t, &lt, &off);
	return off;
}

int
campaign_parse_time(const char *s, time_t *t, char *err, size_t n)
{
	struct tm tm, back;
	char zone[128] = "";
	int y, mo, d, h, mi, sec = 0, used = 0;
	time_t local, a, b;
	long before, after;

	memset(&tm, 0, sizeof(tm));
	for (const char *p = s; *p && *p != ' '; p++)
		if (!isdigit((unsigned char)*p) && *p != '-')
			goto bad;
	if (sscanf(s, "%4d-%2d-%2d %2d:%2d%n", &y, &mo, &d, &h, &mi, &used) != 5 ||
	    strchr(s, '+'))
		goto bad;
	if (s[used] == ':') {
		int more = 0;

		if (sscanf(s + used, ":%2d%n", &sec, &more) != 1) {
			snprintf(err, n, "bad seconds");
			return -1;
		}
		used += more;
	}
	while (s[used] == ' ')
		used++;
	snprintf(zone, sizeof(zone), "%s", s + used);
	if (y < 2000 || y > 2200 || mo < 1 || mo > 12 || d < 1 || h < 0 ||
	    h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59)
		goto range;
	if (*zone && cond_tz_check(zone, err, n) < 0)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	local = timegm(&tm);
	gmtime_r(&local, &back);
	if (back.tm_mday != d || back.tm_mon != mo - 1)
		goto range;             /* February 31st and the like */
	/*
	 * Local time to UTC: try the offsets in force a day before and a
	 * day after; keep a reading that gives the same local time back
	 * (the earlier, if the hour repeats). In a spring-forward gap
	 * neither does: read it with the offset from before the change.
	 */
	before = offset_at(zone, local - 86400);
	after = offset_at(zone, local + 86400);
	a = local - before;
	b = local - after;
	if (offset_at(zone, a) == before && (offset_at(zone, b) != after ||
	    a <= b))
		*t = a;
	else if (offset_at(zone, b) == after)
		*t = b;
	else
		*t = a;
	return 0;
bad:
	snprintf(err, n, "expected \"YYYY-MM-DD HH:MM [Zone/Name]\"");
	return -1;
range:
	snprintf(err, n, "date or time out of range");
	return -1;
}

int
campaign_split_address(const char *s, char *display, size_t dn, char *addr,
    size_t an)
{
	const char *lt = strrchr(s, '<'), *gt;
	size_t len;

	display[0] = addr[0] = '\0';
	if (!lt) {
		while (isspace((unsigned char)*s))
			s++;
		len = strlen(s);
		while (len && isspace((unsigned char)s[len - 1]))
			len--;
		if (len == 0 || len >= an)
			return -1;
		memcpy(addr, s, len);
		addr[len] = '\0';
		return 0;
	}
	if (!(gt = strchr(lt, '>')) || gt[1] != '\0' || gt - lt - 1 <= 0 ||
	    (size_t)(gt - lt - 1) >= an)
		return -1;
	memcpy(addr, lt + 1, (size_t)(gt - lt - 1));
	addr[gt - lt - 1] = '\0';
	while (isspace((unsigned char)*s))
		s++;
	len = (size_t)(lt - s);
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		/* a quoted-string: drop the quotes, undo quoted-pairs */
		size_t o = 0;

		for (size_t i = 1; i + 1 < len && o + 1 < dn; i++) {
			if (s[i] == '\\' && i + 2 < len)
				i++;
			display[o++] = s[i];
		}
		display[o] = '\0';
		return 0;
	}
	if (len >= dn)
		len = dn - 1;
	memcpy(display, s, len);
	display[len] = '\0';
	return 0;
}

static void
def_free(struct campaign_def *c)
{
	if (!c)
		return;
	conf_unbind(campaign_keys, c);
	tmpl_free(c->from);
	tmpl_free(c->reply_to);
	tmpl_free(c->subject);
	tmpl_free(c->preheader);
	cond_free(c->audience);
	free(c->name);
	free(c->file);
	free(c);
}

/* Compile one header template; NULL for "". */
static struct tmpl *
header_tmpl(struct cfgfile_node *root, const char *key, const char *src,
    struct cfgfile_errors *errs)
{
	struct tmpl_error te;
	struct tmpl *t = NULL;

	if (!*src)
		return NULL;
	if (tmpl_compile(key, src, strlen(src), &t, &te) < 0) {
		struct cfgfile_node *n = node_of(root, key);
		struct cfgfile_pos p = n ? cfgfile_value_pos(n, offset_of(src,
		    te.line, te.col)) : root->pos;

		cfgfile_error(errs, &p, "%s: %s", key, te.msg);
		return NULL;
	}
	return t;
}

static void
check_address(const char *key, const char *src, const struct cfgfile_pos *at,
    struct cfgfile_errors *errs)
{
	char display[512], addr[512];
	const char *why = NULL;

	if (strstr(src, "{{"))
		return;         /* personalized: checked when rendered */
	if (campaign_split_address(src, display, sizeof(display), addr,
	    sizeof(addr)) < 0 || !mime_addr_valid(addr, &why))
		cfgfile_error(errs, at, "%s: '%s' is not a valid address%s%s",
		    key, src, why ? ": " : "", why ? why : "");
}

struct field_check {
	const struct cfgfile_pos *at;
	struct cfgfile_errors *errs;
	int bad;
};

/* An audience may read the lead's columns and its custom fields. */
static void
check_field(void *arg, const char *name)
{
	struct field_check *fc = arg;

	if (strncmp(name, "fields.", 7) == 0)
		return;
	for (size_t i = 0; i < lead_sqlmap.ncols; i++)
		if (strcmp(lead_sqlmap.cols[i].name, name) == 0)
			return;
	cfgfile_error(fc->errs, fc->at, "audience: no lead field '%s' (custom "
	    "fields are written fields.%s)", name, name);
	fc->bad = 1;
}

/*
 * Bind and check the campaign keys of section root (filepos: where the
 * section is). mode 0: a newsletter, 1: a notification, 2: a drip's email
 * step (sent to one lead at a time like a notification, with list headers
 * like a newsletter; from and reply_to default to dfrom and dreply).
 * Unknown keys are left for the caller to report.
 */
static struct campaign_def *
load_section(struct cfgfile_node *root, const struct cfgfile_pos *filepos,
    const char *path, const char *name, const struct tmpl_set *templates,
    int mode, const char *dfrom, const char *dreply,
    struct cfgfile_errors *errs)
{
	struct cfgfile_pos file = *filepos;
	struct campaign_def *c = calloc(1, sizeof(*c));
	struct cond_error ce;
	char err[256];
	int notification = mode != 0;

	if (!c || !(c->name = strdup(name)) || !(c->file = strdup(path))) {
		def_free(c);
		return NULL;
	}
#define AT(k) pos_of(root, k, &file)
	conf_bind(campaign_keys, root, c, NULL, errs);
	if (mode == 2 && !*c->from_src && dfrom && *dfrom) {
		free(c->from_src);
		c->from_src = strdup(dfrom);
	}
	if (mode == 2 && !*c->reply_to_src && dreply && *dreply) {
		free(c->reply_to_src);
		c->reply_to_src = strdup(dreply);
	}
	if (!c->from_src || !c->reply_to_src) {
		def_free(c);
		return NULL;
	}
	c->sms = c->channel_src && strcmp(c->channel_src, "sms") == 0;
	if (c->sms) {
		static const char *const email_only[] = { "from", "reply_to",
			"subject", "preheader", "html", "rate", NULL };

		for (const char *const *k = email_only; *k; k++)
			if (node_of(root, *k))
				cfgfile_error(errs, AT(*k), "%s: an SMS campaign "
				    "has no %s (it has a text template and goes "
				    "at its gateway's rate)", *k, *k);
		if (notification)
			cfgfile_error(errs, AT("channel"), "channel: %s",
			    mode == 2 ? "a drip's email step is an email (an "
			    "SMS step is type = sms)" : "notifications are "
			    "emails");
		if (!*c->text_name)
			cfgfile_error(errs, &file, "text: name the SMS template, "
			    "e.g. text = \"sms/spring-sale\"");
		if (quiet_parse(c->quiet_src, &c->quiet, err, sizeof(err)) < 0)
			cfgfile_error(errs, AT("quiet_hours"), "quiet_hours: %s",
			    err);
		if (cond_tz_check(c->time_zone, err, sizeof(err)) < 0)
			cfgfile_error(errs, AT("time_zone"), "time_zone: %s (a "
			    "name such as \"America/New_York\")", err);
	} else {
		static const char *const sms_only[] = { "quiet_hours",
			"time_zone", "gateway", "max_segments", NULL };

		for (const char *const *k = sms_only; *k; k++)
			if (node_of(root, *k))
				cfgfile_error(errs, AT(*k), "%s: only SMS "
				    "campaigns (channel = sms) have it", *k);
		if (!*c->from_src)
			cfgfile_error(errs, &file, "from: a sender is required, "
			    "e.g. from = \"Acme News <news@acme.example>\"");
		if (!*c->subject_src)
			cfgfile_error(errs, &file, "subject: a subject is "
			    "required");
		if (!*c->html_name && !*c->text_name)
			cfgfile_error(errs, &file, "html or text: name at least "
			    "one template");
	}
	c->notification = mode == 1;
	c->lists_pos = *AT("lists");
	c->lists_pos.file = NULL;
	if (notification) {
		if (c->lists.n || *c->audience_src ||
		    strcmp(c->schedule_src, "manual") != 0)
			cfgfile_error(errs, AT(c->lists.n ? "lists" :
			    *c->audience_src ? "audience" : "schedule"), "%s",
			    mode == 2 ? "a drip step goes to one lead at a "
			    "time: lists, audience and schedule do not apply" :
			    "notifications go to one address at a time: lists, "
			    "audience and schedule do not apply");
	} else if (c->lists.n == 0 && !c->sms) {
		cfgfile_error(errs, &file, "lists: name the list(s) to send to, "
		    "e.g. lists = { \"newsletter\" }");
	}
	if (*c->from_src)
		check_address("from", c->from_src, AT("from"), errs);
	if (*c->reply_to_src)
		check_address("reply_to", c->reply_to_src, AT("reply_to"), errs);
	c->from = header_tmpl(root, "from", c->from_src, errs);
	c->reply_to = header_tmpl(root, "reply_to", c->reply_to_src, errs);
	c->subject = header_tmpl(root, "subject", c->subject_src, errs);
	c->preheader = header_tmpl(root, "preheader", c->preheader_src,
	    errs);
	if (*c->html_name && !(c->html = tmpl_set_get(templates, c->html_name)))
		cfgfile_error(errs, AT("html"), "html: no template '%s' (a file "
		    "%s.mustache in the templates directory)", c->html_name,
		    c->html_name);
	if (*c->text_name && !(c->text = tmpl_set_get(templates, c->text_name)))
		cfgfile_error(errs, AT("text"), "text: no template '%s' (a file "
		    "%s.mustache in the templates directory)", c->text_name,
		    c->text_name);
	if (*c->audience_src && cond_parse(c->audience_src, &c->audience,
	    &ce) == 0) {
		struct field_check fc = { AT("audience"), errs, 0 };

		cond_fields(c->audience, check_field, &fc);
	} else if (*c->audience_src) {
		struct cfgfile_node *an = node_of(root, "audience");
		struct cfgfile_pos p = an ? cfgfile_value_pos(an,
		    (size_t)ce.offset) : file;

		cfgfile_error(errs, &p, "audience: %s", ce.msg);
	}
	if (strcmp(c->schedule_src, "manual") != 0 &&
	    campaign_parse_time(c->schedule_src, &c->scheduled_at, err,
	    sizeof(err)) < 0)
		cfgfile_error(errs, AT("schedule"), "schedule: %s (or manual)",
		    err);
#undef AT
	return c;
}

static struct campaign_def *
load_one(const char *path, const char *name, const struct tmpl_set *templates,
    int notification, struct cfgfile_errors *errs)
{
	struct cfgfile_tree tree;
	struct cfgfile_pos file = { NULL, 0, 0 };
	struct campaign_def *c;

	cfgfile_parse(path, &tree, errs);
	file.file = tree.nfiles ? tree.files[0] : path;
	c = load_section(tree.root, &file, path, name, templates,
	    notification, NULL, NULL, errs);
	conf_check_unknown(tree.root, errs);
	cfgfile_tree_free(&tree);
	return c;
}

struct campaign_def *
campaign_load_step(struct cfgfile_node *sec, const char *file,
    const char *name, const struct tmpl_set *templates, const char *from,
    const char *reply_to, struct cfgfile_errors *errs)
{
	return load_section(sec, &sec->pos, file, name, templates, 2, from,
	    reply_to, errs);
}

void
campaign_def_free(struct campaign_def *c)
{
	def_free(c);
}

int
campaign_def_rename(struct campaign_def *c, const char *name)
{
	char *n = strdup(name);

	if (!n)
		return -1;
	free(c->name);
	c->name = n;
	return 0;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp((*(struct campaign_def *const *)a)->name,
	    (*(struct campaign_def *const *)b)->name);
}

struct load_ctx {
	const struct tmpl_set *templates;
	int notification;
	struct campaign_set *out;
	struct cfgfile_errors *errs;
};

static void
load_file(const char *path, const char *name, void *arg)
{
	struct load_ctx *x = arg;
	struct campaign_def *c, **v;

	if (!(c = load_one(path, name, x->templates, x->notification,
	    x->errs)))
		return;
	if (!(v = realloc(x->out->v, (x->out->n + 1) * sizeof(*v)))) {
		def_free(c);
		return;
	}
	x->out->v = v;
	x->out->v[x->out->n++] = c;
}

static int
load_dir(const char *dir, const struct tmpl_set *templates, int notification,
    struct campaign_set *out, struct cfgfile_errors *errs)
{
	struct load_ctx x = { templates, notification, out, errs };
	int n;

	memset(out, 0, sizeof(*out));
	n = cfgfile_each_file(dir, "campaign", CAMPAIGN_NAME_MAX, errs,
	    load_file, &x);
	if (out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), by_name);
	return n;
}

int
campaign_load_dir(const char *dir, const struct tmpl_set *templates,
    struct campaign_set *out, struct cfgfile_errors *errs)
{
	return load_dir(dir, templates, 0, out, errs);
}

int
campaign_load_notifications(const char *dir, const struct tmpl_set *templates,
    struct campaign_set *out, struct cfgfile_errors *errs)
{
	return load_dir(dir, templates, 1, out, errs);
}

void
campaign_set_free(struct campaign_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		def_free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

const struct campaign_def *
campaign_find(const struct campaign_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i]->name, name) == 0)
			return s->v[i];
	return NULL;
}
