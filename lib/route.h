/*
 * route - the routing engine: conf/routing.conf (teams, reps, ordered
 * rules) and the pure decisions made from it: which rule a lead matches
 * and which rep (or set of reps) of the rule's team gets the offer.
 *
 * It does no I/O besides reading routing.conf (and the tz database
 * through cond.c), does no logging, and keeps no state between calls: the
 * runtime state of each rep (availability, open leads, stride pass) is
 * the caller's, passed in and updated in place. It does not send offers,
 * time them out, store anything or know the database: the daemon does,
 * and must persist what route_pick changes (see "Persisting state").
 *
 * routing.conf
 *     time_zone = "UTC"                     zone of hour/weekday in rules
 *     team "east" { method = round_robin  offer_window = 5m  max_offers = 3
 *                   broadcast_round = true  catch_all = "ann"  manager = ""
 *                   tiers = { "senior:70", "junior:0" } }
 *     rep "ann" { name email phone time_zone hours weight capacity skills
 *                 territories products languages teams tier notify manager }
 *     rule "hot-us" { when = "country == 'US' and score >= 70"
 *                     team = "east"  require = { "territory" }
 *                     skills = { "enterprise" }  priority = 80 }
 * conf/routing.conf documents every key. Rules are tried in file order;
 * the first whose `when` holds wins. The last rule must be a default rule
 * (no `when`, or when = "true"), and no default rule may come before it.
 *
 * Eligibility. A rep of the team can be offered a lead unless it is
 *   - off duty (state on_duty == 0),
 *   - outside its working hours (wall-clock time in its time zone; no
 *     hours means any time; a range whose end is before its start runs
 *     past midnight into the next day),
 *   - at capacity (state open >= capacity; capacity 0 = no limit),
 *   - in the lead's declined set (declined or let an offer expire),
 *   - lacking what the rule requires: require = { "territory" } means the
 *     lead's country or region equals one of the rep's territories, or a
 *     territory "postal:PREFIX" starts the lead's postal_code; "product"
 *     means the lead's product is one of the rep's products; "language"
 *     means the lead's language is one of the rep's languages, where a
 *     bare "en" also covers "en-US". A territory, product or language "*"
 *     matches anything. Strings compare case-insensitively (ASCII). A
 *     requirement is waived for a lead that lacks the field (it cannot
 *     be matched, and leaking it to the catch-all would be worse). The
 *     rule's skills: the rep must have every one.
 * The first three are absence (the rep cannot take any lead now); the
 * last two concern this lead only.
 *
 * Stride scheduling. Each rep has a pass value; among eligible reps the
 * lowest pass wins and then advances by 1/weight, so over time reps get
 * leads in proportion to their weights. Ties go to the rep written first
 * in routing.conf; every decision is deterministic. A rep never banks
 * credit while absent: when a rep is seen absent, route_pick marks it
 * away; when it is next eligible, its pass is raised to the floor, the
 * lowest pass among eligible reps that were present (when every eligible
 * rep is returning, the highest pass among them), and away is cleared.
 * Lead-specific exclusions (declined, lacking attributes) do not mark a
 * rep away. One pass per rep serves all of its teams, so leads taken in
 * one team count in the others.
 *
 * Methods and the offer chain, for one lead in one team:
 *   round_robin    offer to the eligible rep with the lowest pass
 *   least_loaded   offer to the eligible rep with the fewest open leads;
 *                  ties by lowest pass, then file order
 *   score_tiers    the lead's score (0 when missing) selects the highest
 *                  tier whose minimum it reaches; lowest pass among the
 *                  eligible reps of that tier, else of the next lower
 *                  tiers in turn, else of the higher tiers (nearest first)
 *   broadcast      offer to every eligible rep at once; first claim wins
 *   manual, pull   into the team's queue (ROUTE_QUEUE): a lead admin
 *                  assigns (manual), or reps take leads (pull)
 * For the first three, once max_offers reps have declined or let the
 * offer expire (hist->ndeclined >= max_offers), or when nobody eligible is
 * left, the lead goes to a broadcast round among the eligible reps (if
 * broadcast_round is true and anyone is eligible), then to the catch-all:
 * the team's catch_all rep, else its manager, else the manual queue. The
 * catch-all takes ownership regardless of eligibility.
 *
 * Persisting state. The daemon keeps one struct route_rep_state per rep,
 * stored by rep id (pass and away in the reps table; on_duty and the open
 * count from its own data), and builds the array in this configuration's
 * rep order (indexes change on reload; ids do not). A decision locks the
 * team's reps (SELECT ... FOR UPDATE, or a per-team advisory lock) so two
 * nodes never pick from the same snapshot, calls route_pick, and writes
 * back every state whose `changed` flag is set in the same transaction
 * as the offer. New reps start from route_state_init(). Passes only grow;
 * subtracting one constant from every rep's pass changes nothing, should
 * the daemon want to keep them small.
 *
 * Thread safety: a struct route_conf is immutable after route_load; calls
 * on one conf may run on several threads if each has its own states.
 */
#ifndef LEADCAST_ROUTE_H
#define LEADCAST_ROUTE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "cfgfile.h"
#include "conf.h"

struct cond;
struct cond_env;

#define ROUTE_NONE      ((size_t)-1)    /* no rep */
#define ROUTE_NAME_MAX  64              /* bytes of a team, rep or rule name */
#define ROUTE_WEEK_WORDS 158            /* 7 * 1440 minutes, in 64-bit words */

enum route_method { ROUTE_ROUND_ROBIN, ROUTE_LEAST_LOADED, ROUTE_SCORE_TIERS,
	ROUTE_BROADCAST, ROUTE_MANUAL, ROUTE_PULL };

#define ROUTE_REQ_TERRITORY     0x1
#define ROUTE_REQ_PRODUCT       0x2
#define ROUTE_REQ_LANGUAGE      0x4

#define ROUTE_NOTIFY_EMAIL      0x1
#define ROUTE_NOTIFY_SMS        0x2

struct route_tier {
	char *name;
	double min_score;
};

struct route_team {
	char *name;
	char *method_src;               /* as written */
	enum route_method method;
	long offer_window_ms;
	long max_offers;                /* single offers before the broadcast */
	int broadcast_round;            /* broadcast when the offers ran out */
	char *catch_all_id;             /* "" = none */
	char *manager_id;               /* "" = none */
	struct conf_strlist tiers_src;
	size_t catch_all;               /* rep index or ROUTE_NONE */
	size_t manager;                 /* rep index or ROUTE_NONE */
	struct route_tier *tiers;       /* score_tiers: highest minimum first */
	size_t ntiers;
	size_t *members;                /* rep indexes, in file order */
	int *member_tier;               /* score_tiers: tier index per member */
	size_t nmembers;
};

struct route_rep {
	char *id;
	char *name;                     /* defaults to the id */
	char *email;                    /* "" = none */
	char *phone;                    /* E.164 or "" */
	char *time_zone;                /* "" = routing.conf's time_zone */
	struct conf_strlist hours;      /* as written; empty = any time */
	char *weight_src;
	long capacity;                  /* open leads; 0 = no limit */
	struct conf_strlist skills, territories, products, languages, teams;
	char *tier;                     /* "" = none */
	struct conf_strlist notify_src;
	char *manager_id;               /* "" = none */
	/* derived */
	double weight;                  /* 0.1 .. 100 */
	double stride;                  /* 1 / weight */
	unsigned notify;                /* ROUTE_NOTIFY_*: channels to use */
	size_t manager;                 /* rep index or ROUTE_NONE */
	size_t zone;                    /* index into route_conf.zones */
	uint64_t *week;                 /* minute-of-week bitmap (Monday 00:00
	                                 * = bit 0); NULL = any time */
};

struct route_rule {
	char *name;
	char *when_src;                 /* "" = always */
	char *team_name;
	struct conf_strlist require_src;
	struct conf_strlist skills;     /* the rep must have all of them */
	long priority;                  /* 0 .. 100, for queues; default 50 */
	/* derived */
	struct cond *when;              /* NULL = matches every lead */
	const struct route_team *team;
	unsigned require;               /* ROUTE_REQ_* */
};

struct route_conf {
	char *path;
	char *time_zone;                /* of hour/weekday in rule conditions */
	struct route_team *teams;
	size_t nteams;
	struct route_rep *reps;         /* in file order: the state index */
	size_t nreps;
	struct route_rule *rules;       /* in file order */
	size_t nrules;
	char **zones;                   /* distinct zones; [0] NULL = UTC */
	size_t nzones;
	size_t *rep_by_id;              /* rep indexes sorted by id */
};

/*
 * Load and check path. Returns a new conf, which the caller frees with
 * route_conf_free(); or NULL with every problem appended to errs as
 * "file:line:col: message".
 */
struct route_conf *route_load(const char *path, struct cfgfile_errors *errs);
/* Same from memory; name is used in positions and for includes. */
struct route_conf *route_load_string(const char *name, const char *text,
    size_t len, struct cfgfile_errors *errs);
/*
 * route_load, with the rep sections of text (in routing.conf syntax, name
 * used in positions) laid over the file's: a rep of both keeps the file's
 * settings except those text gives; a rep only in text is added. For reps
 * kept in the database (added or changed through the API).
 */
struct route_conf *route_load_overlay(const char *path, const char *name,
    const char *text, size_t len, struct cfgfile_errors *errs);
void route_conf_free(struct route_conf *rc);

/* Lookups by name; NULL or ROUTE_NONE when unknown. */
const struct route_team *route_team_find(const struct route_conf *rc,
    const char *name);
size_t route_rep_find(const struct route_conf *rc, const char *id);
const struct route_rule *route_rule_find(const struct route_conf *rc,
    const char *name);
const char *route_method_name(enum route_method m);
/* 1 if s may name a team, rep or rule: letters, digits and . _ - @ +,
 * 1 to ROUTE_NAME_MAX bytes. */
int route_valid_id(const char *s);

/* ---- runtime state ----------------------------------------------------- */

struct route_rep_state {
	double pass;            /* stride pass: the lowest eligible wins */
	int open;               /* open leads the rep owns now */
	int on_duty;            /* the rep's availability switch */
	int away;               /* route_pick: seen absent, not yet back */
	int changed;            /* route_*: pass or away changed; persist it
	                         * and clear the flag */
};

/* A new rep's state: on duty, nothing open, pass 0, away (so that its
 * first eligible pick raises its pass to the floor: no burst). */
void route_state_init(struct route_rep_state *s);
/* The daemon may call this when a rep comes back on duty; route_pick
 * would notice by itself only if it saw the rep off duty. */
void route_rep_rejoin(struct route_rep_state *s);
/* Advance the rep's pass by 1/weight: for a broadcast claim, a pull, a
 * manual assignment the daemon wants to count (route_pick does it for
 * the offers it makes). */
void route_charge(const struct route_conf *rc, struct route_rep_state *states,
    size_t rep);

/* What has already happened to this lead in this team. */
struct route_history {
	const size_t *declined; /* rep indexes that declined or let an offer
	                         * expire (any order) */
	size_t ndeclined;
	int broadcast_done;     /* a broadcast round ran and nobody claimed */
};

enum route_action {
	ROUTE_OFFER_ONE,        /* offer to rep, for the team's offer_window */
	ROUTE_OFFER_ALL,        /* first-claim offer to each rep of set */
	ROUTE_ASSIGN,           /* assign to rep (catch-all owner): no offer */
	ROUTE_QUEUE             /* into the team's manual or pull queue */
};

struct route_result {
	const struct route_rule *rule;  /* route_decide: the matching rule */
	const struct route_team *team;
	enum route_action action;
	size_t rep;             /* OFFER_ONE, ASSIGN; else ROUTE_NONE */
	size_t *set;            /* caller's buffer, or NULL; on return the
	                         * eligible reps (file order): the broadcast
	                         * set, or the candidates an offer chose from */
	size_t setcap;          /* room in set; team->nmembers always does */
	size_t nset;            /* how many were eligible (may exceed setcap
	                         * for non-broadcast results) */
};

/* The first rule lead matches (never NULL for a loaded conf). env NULL
 * means now = time(NULL); env->tz NULL means routing.conf's time_zone. */
const struct route_rule *route_match(const struct route_conf *rc,
    const json_t *lead, const struct cond_env *env);

/*
 * Decide what to do with lead in team (rule: its requirements, or NULL
 * for none) given the reps' states (rc->nreps of them, updated in place:
 * see "Stride scheduling") and the lead's history in the team (NULL =
 * none), at time now. Fills out (set and setcap are the caller's). Returns
 * 0, or -1 if a broadcast set does not fit setcap (nothing is changed).
 */
int route_pick(const struct route_conf *rc, const struct route_team *team,
    const struct route_rule *rule, const json_t *lead,
    struct route_rep_state *states, const struct route_history *hist,
    time_t now, struct route_result *out);

/* route_match then route_pick in the rule's team, at env->now. */
int route_decide(const struct route_conf *rc, const json_t *lead,
    const struct cond_env *env, struct route_rep_state *states,
    const struct route_history *hist, struct route_result *out);

enum route_why { ROUTE_ELIGIBLE, ROUTE_OFF_DUTY, ROUTE_AT_CAPACITY,
	ROUTE_OFF_HOURS, ROUTE_DECLINED, ROUTE_LACKS_SKILL,
	ROUTE_LACKS_TERRITORY, ROUTE_LACKS_PRODUCT, ROUTE_LACKS_LANGUAGE };

/*
 * Whether rep could be offered lead under rule (NULL: no requirements),
 * and if not, the first reason in the order above. For pull queues and
 * for explaining decisions; it changes nothing.
 */
enum route_why route_eligible(const struct route_conf *rc,
    const struct route_rule *rule, size_t rep,
    const struct route_rep_state *st, const json_t *lead,
    const struct route_history *hist, time_t now);
const char *route_why_str(enum route_why w);

/* 1 if now falls in rep's working hours (in its zone), else 0. */
int route_in_hours(const struct route_conf *rc, size_t rep, time_t now);

#endif
