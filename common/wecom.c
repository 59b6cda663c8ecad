#include "wecom.h"
#include "db.h"
#include "err.h"
#include "staff.h"
#include "utf8.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_API "https://qyapi.weixin.qq.com"
#define MAX_ANSWER (8 << 20)          /* bytes of one API answer */
#define TOKEN_MARGIN 300              /* refresh this long before expiry */
#define LOOKUP_SLACK 120              /* seconds around an attempt's window */

/* WECOM_LIMIT: private touches that count against WeCom's per-customer
 * limit since ?3, other than touch ?2: handed over, delivered, or claimed
 * (on their way). */
const char wecom_limit_sql[] = /* filters, not an IN list driving the index: see sender.c */
	"SELECT count(*) FROM touch INDEXED BY touch_person WHERE pid = ?1 AND channel = 'private' AND id <> ?2 "
	"AND ((state IN ('task_created', 'delivered') AND sent_at >= ?3) OR (state = 'claimed' AND claimed_at >= ?3))";
/* The attempt's touch, only while this run still holds its claim. */
const char wecom_link_sql[] =
	"UPDATE touch SET wecom_task = ?2, staff = ?3, wecom_to = ?4 WHERE id = ?1 AND state = 'claimed' AND claimed_by = ?5";
const char wecom_outcome_sql[] =
	"UPDATE touch SET state = ?2, reason = ?3, not_before = ?4, "
	"sent_at = CASE WHEN ?2 IN ('task_created', 'staff_notified') THEN ?5 ELSE sent_at END WHERE id = ?1";

struct entry {
	int64_t id;
	char kind;                 /* t: add_msg_template, m: moments, d: staff digest */
	char staff[128], to[128];
	char *text, *name;
	int64_t window_end;
	void *tag;
	const char *result;        /* once attempted: its outcome */
	char reason[256];
	int64_t not_before;
	int attempted, linked;
};

struct wecom {
	sqlite3 *db;
	int64_t now;
	char *api, *corpid, *secret, *token_file;
	char token[600];
	int64_t token_expires;
	CURL *curl;
	struct staff *staff;
	long timeout_ms, tries, per_min, batch, confirm, agentid;
	double scale;
	int limit_n;                   /* 0: days in the month */
	char limit_unit;               /* m, w, d */
	time_t minute_start;
	long minute_calls;
	struct entry *q;
	size_t nq, capq;
	time_t first_held;             /* when the oldest held touch was claimed */
	char me[160];
	struct wecom_stats st;
	sqlite3_stmt *period_count, *new_task, *link, *task_created, *task_state, *touch_state,
	             *requeue, *known_msgid, *recover_row, *first_to, *job_created, *digest_count, *open_moment,
	             *task_text;
};

static long env_num(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v && atol(v) > 0 ? atol(v) : dflt;
}

static char *read_secret_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "SMR_WECOM_SECRET_FILE: %s: %s", path, strerror(errno));
		return NULL;
	}
	char buf[512];
	char *s = fgets(buf, sizeof buf, f) ? xstrdup(buf) : NULL;
	fclose(f);
	if (s)
		s[strcspn(s, "\r\n")] = '\0';
	if (!s || !*s) {
		free(s);
		snprintf(err, errlen, "SMR_WECOM_SECRET_FILE: %s: empty", path);
		return NULL;
	}
	return s;
}

static int parse_limit(struct wecom *w, char *err, size_t errlen)
{
	const char *v = getenv("SMR_WECOM_LIMIT");
	w->limit_unit = 'm';
	if (!v || strcmp(v, "month") == 0)
		return 0;
	if (strcmp(v, "7/week") == 0) {
		w->limit_n = 7;
		w->limit_unit = 'w';
		return 0;
	}
	if (strcmp(v, "1/day") == 0) {
		w->limit_n = 1;
		w->limit_unit = 'd';
		return 0;
	}
	snprintf(err, errlen, "SMR_WECOM_LIMIT: \"%s\" is not month, 7/week or 1/day", v);
	return -1;
}

static void prepare(struct wecom *w)
{
	sqlite3 *db = w->db;
	w->period_count = db_prepare(db, wecom_limit_sql);
	w->new_task = db_prepare(db, "INSERT INTO wecom_task(staff, text, state, started_at, deadline, claimed_by, kind) "
	                             "VALUES (?1, ?2, 'attempting', ?3, ?4, ?5, ?6)");
	w->link = db_prepare(db, wecom_link_sql);
	w->task_created = db_prepare(db, "UPDATE wecom_task SET state = 'created', msgid = ?2, created_at = ?3 WHERE id = ?1");
	w->task_state = db_prepare(db, "UPDATE wecom_task SET state = ?2, reason = ?3 WHERE id = ?1");
	w->task_text = db_prepare(db, "UPDATE wecom_task SET text = ?2 WHERE id = ?1");
	w->touch_state = db_prepare(db, wecom_outcome_sql);
	w->requeue = db_prepare(db, "UPDATE touch SET state = 'queued', reason = ?2, wecom_task = NULL "
	                            "WHERE wecom_task = ?1 AND state = 'claimed'");
	w->known_msgid = db_prepare(db, "SELECT 1 FROM wecom_task WHERE msgid = ?1");
	w->recover_row = db_prepare(db, "SELECT t.wecom_task, k.state, k.staff, k.text, k.started_at, k.kind "
	                                "FROM touch t LEFT JOIN wecom_task k ON k.id = t.wecom_task "
	                                "WHERE t.id = ?1 AND t.state = 'claimed'");
	w->first_to = db_prepare(db, "SELECT wecom_to FROM touch WHERE wecom_task = ?1 AND wecom_to IS NOT NULL LIMIT 1");
	w->open_moment = db_prepare(db, "SELECT id, state FROM wecom_task INDEXED BY wecom_task_open "
	                                "WHERE state IN ('attempting', 'created') AND kind = 'moment' AND staff = ?1 AND text = ?2 "
	                                "AND (state = 'created' OR started_at > ?3) ORDER BY state = 'created' DESC, id DESC LIMIT 1");
	w->job_created = db_prepare(db, "UPDATE wecom_task SET state = 'created', jobid = ?2, created_at = ?3 WHERE id = ?1");
	w->digest_count = db_prepare(db, "SELECT count(*) FROM wecom_task INDEXED BY wecom_task_digest "
	                                 "WHERE kind = 'digest' AND staff = ?1 AND started_at > ?2 "
	                                 "AND state IN ('attempting', 'done')");
}

struct wecom *wecom_open(const char *spec, sqlite3 *db, const char *dbpath, int64_t now, char *err, size_t errlen)
{
	if (*spec) {
		snprintf(err, errlen, "wecom: takes no argument (configure it with SMR_WECOM_* variables)");
		return NULL;
	}
	const char *corpid = getenv("SMR_WECOM_CORPID");
	const char *secret = getenv("SMR_WECOM_SECRET"), *sfile = getenv("SMR_WECOM_SECRET_FILE");
	if (!corpid || !*corpid || ((!secret || !*secret) && (!sfile || !*sfile))) {
		snprintf(err, errlen, "wecom: needs SMR_WECOM_CORPID and SMR_WECOM_SECRET or SMR_WECOM_SECRET_FILE");
		return NULL;
	}
	struct wecom *w = xcalloc(1, sizeof *w);
	w->db = db;
	w->now = now;
	w->secret = secret && *secret ? xstrdup(secret) : read_secret_file(sfile, err, errlen);
	if (!w->secret || parse_limit(w, err, errlen) != 0) {
		free(w->secret);
		free(w);
		return NULL;
	}
	w->corpid = xstrdup(corpid);
	const char *api = getenv("SMR_WECOM_API");
	w->api = xstrdup(api && *api ? api : DEFAULT_API);
	const char *tf = getenv("SMR_WECOM_TOKEN_FILE");
	w->token_file = tf && *tf ? xstrdup(tf) : xasprintf("%s.wecom-token", dbpath);
	w->timeout_ms = env_num("SMR_WECOM_TIMEOUT_MS", 15000);
	w->tries = env_num("SMR_WECOM_TRIES", 4);
	w->per_min = env_num("SMR_WECOM_CALLS_PER_MIN", 600);
	w->batch = env_num("SMR_WECOM_BATCH", 10000);
	if (w->batch > 10000)
		w->batch = 10000;
	w->confirm = env_num("SMR_WECOM_CONFIRM", 86400);
	w->agentid = env_num("SMR_WECOM_AGENTID", 0);
	const char *sc = getenv("SMR_WECOM_BACKOFF_SCALE");
	w->scale = sc && atof(sc) > 0 ? atof(sc) : 1.0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(w->curl = curl_easy_init())) {
		snprintf(err, errlen, "libcurl failed to start");
		wecom_close(w);
		return NULL;
	}
	char host[64] = "localhost";
	gethostname(host, sizeof host - 1);
	snprintf(w->me, sizeof w->me, "%s:%ld", host, (long)getpid());
	w->staff = staff_open(db);
	prepare(w);
	return w;
}

void wecom_close(struct wecom *w)
{
	if (!w)
		return;
	sqlite3_stmt *all[] = {w->period_count, w->new_task, w->link, w->task_created, w->task_state,
	                       w->touch_state, w->requeue, w->known_msgid, w->recover_row, w->first_to,
	                       w->job_created, w->digest_count, w->open_moment, w->task_text};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	staff_close(w->staff);
	if (w->curl) {
		curl_easy_cleanup(w->curl);
		curl_global_cleanup();
	}
	for (size_t i = 0; i < w->nq; i++) {
		free(w->q[i].text);
		free(w->q[i].name);
	}
	free(w->q);
	if (w->secret)
		memset(w->secret, 0, strlen(w->secret));
	free(w->secret);
	free(w->corpid);
	free(w->api);
	free(w->token_file);
	free(w);
}

const struct wecom_stats *wecom_stats(const struct wecom *w) { return &w->st; }

void wecom_claimer(struct wecom *w, const char *me) { snprintf(w->me, sizeof w->me, "%s", me); }

/* ---- HTTP ---- */

struct buf { char *p; size_t n; };

static size_t collect(void *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t len = size * n;
	if (b->n + len > MAX_ANSWER)
		return 0;
	b->p = xrealloc(b->p, b->n + len + 1);
	memcpy(b->p + b->n, p, len);
	b->n += len;
	b->p[b->n] = '\0';
	return len;
}

static void nap(double seconds)
{
	struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* At most per_min calls in any wall-clock minute of this run. */
static void budget(struct wecom *w)
{
	time_t t = time(NULL);
	if (t - w->minute_start >= 60) {
		w->minute_start = t;
		w->minute_calls = 0;
	}
	if (w->minute_calls >= w->per_min) {
		nap((double)(w->minute_start + 60 - t));
		w->minute_start = time(NULL);
		w->minute_calls = 0;
	}
	w->minute_calls++;
	w->st.calls++;
}

/* One HTTP exchange: GET when BODY is NULL. The errcode, WECOM_LOST or
 * WECOM_DOWN; *ANSWER set on errcode 0. */
static long http(struct wecom *w, const char *url, const char *body, json_t **answer, char *reason, size_t rlen)
{
	struct buf b = {0};
	CURL *c = w->curl;
	budget(w);
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	struct curl_slist *h = NULL;
	if (body) {
		h = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	}
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, w->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	long ret;
	json_t *j = NULL;
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
		snprintf(reason, rlen, "wecom: %s", curl_easy_strerror(rc)); /* the URL may hold the secret: not shown */
		ret = WECOM_DOWN;
	} else if (rc != CURLE_OK || code != 200 || !b.p || !(j = json_loads(b.p, 0, NULL)) || !json_is_object(j)) {
		if (rc != CURLE_OK)
			snprintf(reason, rlen, "wecom: no answer: %s", curl_easy_strerror(rc));
		else
			snprintf(reason, rlen, "wecom: no usable answer (HTTP %ld)", code);
		ret = WECOM_LOST;
	} else {
		json_t *e = json_object_get(j, "errcode");
		ret = json_is_integer(e) ? (long)json_integer_value(e) : 0;
		if (ret != 0) {
			const char *m = json_string_value(json_object_get(j, "errmsg"));
			snprintf(reason, rlen, "wecom errcode %ld: %.160s", ret, m ? m : "");
		}
	}
	if (ret == 0 && answer) {
		*answer = j;
		j = NULL;
	}
	json_decref(j);
	free(b.p);
	return ret;
}

/* ---- the token cache: a 0600 file under flock, shared by every run ---- */

static int read_cache(int fd, char *tok, size_t len, int64_t *expires)
{
	char buf[1024];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	json_t *j = json_loads(buf, 0, NULL);
	const char *t = json_string_value(json_object_get(j, "access_token"));
	json_t *e = json_object_get(j, "expires_at");
	int ok = t && json_is_integer(e) && strlen(t) < len;
	if (ok) {
		snprintf(tok, len, "%s", t);
		*expires = json_integer_value(e);
	}
	json_decref(j);
	return ok;
}

static int write_cache(int fd, const char *tok, int64_t expires)
{
	char buf[1024];
	int n = snprintf(buf, sizeof buf, "{\"access_token\":\"%s\",\"expires_at\":%lld}\n", tok, (long long)expires);
	if (n < 0 || (size_t)n >= sizeof buf || ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return -1;
	return fsync(fd);
}

static long fetch_token(struct wecom *w, char *reason, size_t rlen)
{
	char *cid = curl_easy_escape(w->curl, w->corpid, 0), *sec = curl_easy_escape(w->curl, w->secret, 0);
	if (!cid || !sec)
		smr_die(SMR_FATAL, "out of memory");
	char *url = xasprintf("%s/cgi-bin/gettoken?corpid=%s&corpsecret=%s", w->api, cid, sec);
	memset(sec, 0, strlen(sec));
	curl_free(cid);
	curl_free(sec);
	json_t *a = NULL;
	long rc = http(w, url, NULL, &a, reason, rlen);
	memset(url, 0, strlen(url));
	free(url);
	w->st.tokens++;
	if (rc != 0)
		return rc;
	const char *t = json_string_value(json_object_get(a, "access_token"));
	json_t *e = json_object_get(a, "expires_in");
	if (!t || strlen(t) >= sizeof w->token || !json_is_integer(e)) {
		json_decref(a);
		snprintf(reason, rlen, "wecom: gettoken answered without a token");
		return WECOM_LOST;
	}
	snprintf(w->token, sizeof w->token, "%s", t);
	w->token_expires = (int64_t)time(NULL) + json_integer_value(e);
	json_decref(a);
	return 0;
}

/* A token that is not BAD and good for TOKEN_MARGIN more seconds: ours,
 * the cache's (another run may have refreshed it), or a new one. */
static long token_get(struct wecom *w, const char *bad, char *reason, size_t rlen)
{
	int64_t t = time(NULL);
	if (w->token[0] && w->token_expires - TOKEN_MARGIN > t && (!bad || strcmp(bad, w->token) != 0))
		return 0;
	int fd = open(w->token_file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0 || flock(fd, LOCK_EX) != 0) {
		snprintf(reason, rlen, "%s: %s", w->token_file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return WECOM_DOWN;
	}
	long rc = 0;
	char tok[sizeof w->token];
	int64_t exp;
	if (read_cache(fd, tok, sizeof tok, &exp) && exp - TOKEN_MARGIN > t && (!bad || strcmp(bad, tok) != 0)) {
		memcpy(w->token, tok, sizeof tok);
		w->token_expires = exp;
	} else if ((rc = fetch_token(w, reason, rlen)) == 0 && write_cache(fd, w->token, w->token_expires) != 0) {
		smr_warnx(w->token_file, 0, "%s", strerror(errno)); /* the token still works for this run */
	}
	flock(fd, LOCK_UN);
	close(fd);
	return rc;
}

static int token_error(long rc) { return rc == 40001 || rc == 40014 || rc == 42001; }
static int busy_error(long rc) { return rc == 45009 || rc == 45033 || rc == -1; }

/* The wait before retry ATTEMPT (0-based) after RC: a 45009 minute block
 * lasts 60 s; concurrency and busy answers back off 1, 2, 4 s; jitter. */
static double backoff(const struct wecom *w, long rc, long attempt)
{
	double base = rc == 45009 ? 60.0 : (double)(1L << attempt);
	return base * (0.75 + 0.5 * (double)rand() / RAND_MAX) * w->scale;
}

/* API's path under cgi-bin/: "message/send" as it is, a bare name under
 * externalcontact/. */
static char *api_url(const struct wecom *w, const char *api, const char *query)
{
	return xasprintf("%s/cgi-bin/%s%s?access_token=%s%s", w->api, strchr(api, '/') ? "" : "externalcontact/", api,
	                 w->token, query ? query : "");
}

/* One call with a valid token: POST TEXT, or GET when TEXT is NULL with
 * QUERY ("&jobid=...") appended. */
static long call(struct wecom *w, const char *api, const char *text, const char *query, json_t **answer,
                 char *reason, size_t rlen)
{
	if (answer)
		*answer = NULL;
	long rc = token_get(w, NULL, reason, rlen);
	int refreshed = 0;
	for (long attempt = 0; rc == 0; attempt++) {
		char *url = api_url(w, api, query);
		char used[sizeof w->token];
		memcpy(used, w->token, sizeof used);
		rc = http(w, url, text, answer, reason, rlen);
		free(url);
		if (token_error(rc) && !refreshed) {
			refreshed = 1; /* once: refresh, then retry once */
			if ((rc = token_get(w, used, reason, rlen)) != 0)
				break;
			attempt--;
			continue;
		}
		if (busy_error(rc) && attempt + 1 < w->tries) {
			nap(backoff(w, rc, attempt));
			rc = 0;
			continue;
		}
		break;
	}
	return rc;
}

long wecom_call(struct wecom *w, const char *api, json_t *body, json_t **answer, char *reason, size_t rlen)
{
	char *text = json_dumps(body, JSON_COMPACT);
	if (!text)
		smr_die(SMR_FATAL, "out of memory");
	long rc = call(w, api, text, NULL, answer, reason, rlen);
	free(text);
	return rc;
}

long wecom_get(struct wecom *w, const char *api, const char *key, const char *value, json_t **answer, char *reason,
               size_t rlen)
{
	char *v = curl_easy_escape(w->curl, value, 0);
	if (!v)
		smr_die(SMR_FATAL, "out of memory");
	char *query = xasprintf("&%s=%s", key, v);
	curl_free(v);
	long rc = call(w, api, NULL, query, answer, reason, rlen);
	free(query);
	return rc;
}

/* ---- choosing the sender, the platform's per-customer limit ---- */

/* The start of the limit period holding T (local time), and the next. */
static void limit_period(const struct wecom *w, int64_t t, int64_t *start, int64_t *next, int *n)
{
	time_t tt = (time_t)t;
	struct tm lt;
	localtime_r(&tt, &lt);
	lt.tm_hour = lt.tm_min = lt.tm_sec = 0;
	lt.tm_isdst = -1;
	*n = w->limit_n;
	if (w->limit_unit == 'w')
		lt.tm_mday -= (lt.tm_wday + 6) % 7; /* weeks start on Monday */
	else if (w->limit_unit == 'm')
		lt.tm_mday = 1;
	struct tm nx = lt;
	*start = (int64_t)mktime(&lt);
	if (w->limit_unit == 'd')
		nx.tm_mday += 1;
	else if (w->limit_unit == 'w')
		nx.tm_mday += 7;
	else
		nx.tm_mon += 1;
	nx.tm_isdst = -1;
	*next = (int64_t)mktime(&nx);
	if (!*n) /* as many as the month has days */
		*n = (int)((*next - *start + 43200) / 86400);
}

const char *wecom_check(struct wecom *w, int64_t now, int64_t id, int64_t pid, const char *channel, char *staff,
                        size_t slen, char *to, size_t tolen, char *reason, size_t rlen, int64_t *not_before)
{
	int private = strcmp(channel, "private") == 0, by_hand = strcmp(channel, WECOM_STAFF_CHANNEL) == 0;
	if (!private && !by_hand && strcmp(channel, "moments") != 0) {
		snprintf(reason, rlen, "channel %s: the wecom: transport sends private, moments and %s touches only", channel,
		         WECOM_STAFF_CHANNEL);
		return "failed";
	}
	if (by_hand && !w->agentid) {
		snprintf(reason, rlen, "channel %s: SMR_WECOM_AGENTID is not set (the app that reminds staff)",
		         WECOM_STAFF_CHANNEL);
		return "failed";
	}
	char pick[128];
	if (!staff_pick(w->staff, pid, now, staff, pick, sizeof pick, to, tolen, reason, rlen))
		return "suppressed";
	if (!private) { /* moments and staff reminders are not mass messages */
		snprintf(staff, slen, "%s", pick);
		return NULL;
	}
	int64_t start, next;
	int n;
	limit_period(w, now, &start, &next, &n);
	db_bind_int(w->db, w->period_count, 1, pid);
	db_bind_int(w->db, w->period_count, 2, id);
	db_bind_int(w->db, w->period_count, 3, start);
	int64_t had = db_row(w->db, w->period_count) ? sqlite3_column_int64(w->period_count, 0) : 0;
	sqlite3_reset(w->period_count);
	if (had >= n) {
		snprintf(reason, rlen, "WeCom's per-customer limit: %d mass messages this %s", n,
		         w->limit_unit == 'd' ? "day" : w->limit_unit == 'w' ? "week" : "month");
		*not_before = next;
		return "deferred";
	}
	snprintf(staff, slen, "%s", pick);
	return NULL;
}

void wecom_queue(struct wecom *w, int64_t id, const char *channel, const char *staff, const char *to,
                 const char *name, const char *text, int64_t window_end, void *tag)
{
	w->q = xgrow(w->q, &w->capq, w->nq + 1, sizeof *w->q);
	if (!w->nq)
		w->first_held = time(NULL);
	struct entry *e = &w->q[w->nq++];
	memset(e, 0, sizeof *e);
	e->id = id;
	e->kind = strcmp(channel, "moments") == 0 ? 'm' : strcmp(channel, WECOM_STAFF_CHANNEL) == 0 ? 'd' : 't';
	e->name = xstrdup(name ? name : "");
	snprintf(e->staff, sizeof e->staff, "%s", staff);
	snprintf(e->to, sizeof e->to, "%s", to);
	e->text = xstrdup(text);
	e->window_end = window_end;
	e->tag = tag;
}

int wecom_due(const struct wecom *w)
{
	return w->nq >= WECOM_HELD_MAX || (w->nq && time(NULL) - w->first_held >= WECOM_HOLD);
}

void wecom_release(struct wecom *w, void (*release)(void *ctx, int64_t id), void *ctx)
{
	for (size_t i = 0; i < w->nq; i++)
		if (!w->q[i].attempted)
			release(ctx, w->q[i].id);
}

/* ---- creating tasks ---- */

/* Tasks and moments jobs group by kind, sender and text; a staff
 * member's digest takes every text. */
static int same_group(const struct entry *x, const struct entry *y)
{
	int c = x->kind - y->kind;
	if (!c)
		c = strcmp(x->staff, y->staff);
	if (!c && x->kind != 'd')
		c = strcmp(x->text, y->text);
	return c;
}

static int by_sender_text(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = same_group(x, y);
	return c ? c : (x->id > y->id) - (x->id < y->id);
}

static size_t link_touches(struct wecom *w, int64_t task, struct entry *es, size_t n);

/* Record the attempt for ES (committed by the caller before the call):
 * a task row, and each touch linked while this run still holds its claim;
 * a touch whose claim was taken over meanwhile is left out (attempted,
 * no result). Returns the task, with *LINKED touches. */
static int64_t insert_task(struct wecom *w, const char *kind, const char *text, struct entry *es, size_t n,
                           size_t *linked)
{
	int64_t deadline = w->now + w->confirm;
	for (size_t i = 0; i < n; i++)
		if (es[i].window_end < deadline)
			deadline = es[i].window_end;
	db_bind_text(w->db, w->new_task, 1, es[0].staff);
	db_bind_text(w->db, w->new_task, 2, text);
	db_bind_int(w->db, w->new_task, 3, (int64_t)time(NULL)); /* WeCom's clock, for the lookup */
	db_bind_int(w->db, w->new_task, 4, deadline);
	db_bind_text(w->db, w->new_task, 5, w->me);
	db_bind_text(w->db, w->new_task, 6, kind);
	db_run(w->db, w->new_task);
	int64_t task = sqlite3_last_insert_rowid(w->db);
	*linked = link_touches(w, task, es, n);
	return task;
}

/* Link each of ES to TASK while this run still holds its claim; the
 * number linked. */
static size_t link_touches(struct wecom *w, int64_t task, struct entry *es, size_t n)
{
	size_t linked = 0;
	for (size_t i = 0; i < n; i++) {
		es[i].attempted = 1;
		db_bind_int(w->db, w->link, 1, es[i].id);
		db_bind_int(w->db, w->link, 2, task);
		db_bind_text(w->db, w->link, 3, es[i].staff);
		db_bind_text(w->db, w->link, 4, es[i].to);
		db_bind_text(w->db, w->link, 5, w->me);
		db_run(w->db, w->link);
		if ((es[i].linked = sqlite3_changes(w->db) > 0))
			linked++;
	}
	return linked;
}

static void set_task(struct wecom *w, int64_t task, const char *state, const char *reason)
{
	db_bind_int(w->db, w->task_state, 1, task);
	db_bind_text(w->db, w->task_state, 2, state);
	db_bind_text(w->db, w->task_state, 3, reason);
	db_run(w->db, w->task_state);
}

static void set_touch(struct wecom *w, int64_t id, const char *state, const char *reason, int64_t not_before)
{
	db_bind_int(w->db, w->touch_state, 1, id);
	db_bind_text(w->db, w->touch_state, 2, state);
	db_bind_text(w->db, w->touch_state, 3, reason && *reason ? reason : NULL);
	db_bind_opt_int(w->db, w->touch_state, 4, not_before != 0, not_before);
	db_bind_int(w->db, w->touch_state, 5, w->now);
	db_run(w->db, w->touch_state);
}

static void mark_created(struct wecom *w, int64_t task, const char *msgid)
{
	db_bind_int(w->db, w->task_created, 1, task);
	db_bind_text(w->db, w->task_created, 2, msgid);
	db_bind_int(w->db, w->task_created, 3, w->now);
	db_run(w->db, w->task_created);
	w->st.tasks++;
}

long wecom_pages(struct wecom *w, const char *api, json_t *body, const char *list, wecom_row_fn *row, void *arg)
{
	char cur[512] = "", reason[256];
	long rc = 0;
	int stop = 0;
	if (!body)
		smr_die(SMR_FATAL, "out of memory");
	do {
		json_object_set_new(body, "cursor", json_string(cur));
		json_t *a = NULL;
		if ((rc = wecom_call(w, api, body, &a, reason, sizeof reason)) != 0)
			break;
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(a, list), i, v)
			if (!stop)
				stop = row(v, arg);
		const char *next = json_string_value(json_object_get(a, "next_cursor"));
		snprintf(cur, sizeof cur, "%s", next && !stop ? next : "");
		json_decref(a);
	} while (cur[0]);
	json_decref(body);
	return rc;
}

struct match { const char *staff, *to; int found; };

static int staff_row(json_t *v, void *arg)
{
	struct match *m = arg;
	const char *u = json_string_value(json_object_get(v, "userid"));
	return m->found = u && strcmp(u, m->staff) == 0;
}

static int customer_row(json_t *v, void *arg)
{
	struct match *m = arg;
	const char *e = json_string_value(json_object_get(v, "external_userid"));
	return m->found = e && strcmp(e, m->to) == 0;
}

/* Whether task MSGID was STAFF's (get_groupmsg_task) and for TO
 * (get_groupmsg_send_result). 0 or the failing call's error. */
static long task_matches(struct wecom *w, const char *msgid, const char *staff, const char *to, int *match)
{
	struct match m = {staff, to, 0};
	*match = 0;
	long rc = wecom_pages(w, "get_groupmsg_task", json_pack("{s:s, s:i}", "msgid", msgid, "limit", 1000),
	                      "task_list", staff_row, &m);
	if (rc == 41063 || (rc == 0 && !m.found))
		return 0; /* not ready, or another sender's: not ours */
	if (rc != 0)
		return rc;
	m.found = 0;
	rc = wecom_pages(w, "get_groupmsg_send_result",
	                 json_pack("{s:s, s:s, s:i}", "msgid", msgid, "userid", staff, "limit", 1000), "send_list",
	                 customer_row, &m);
	if (rc == 41063)
		return 0;
	*match = m.found;
	return rc;
}

static int known_msgid(struct wecom *w, const char *msgid)
{
	db_bind_text(w->db, w->known_msgid, 1, msgid);
	int k = db_row(w->db, w->known_msgid);
	sqlite3_reset(w->known_msgid);
	return k;
}

struct look {
	struct wecom *w;
	const char *staff, *text, *to;
	char *msgid;
	size_t mlen;
	long found;
};

static int list_row(json_t *m, void *arg)
{
	struct look *l = arg;
	const char *id = json_string_value(json_object_get(m, "msgid"));
	const char *t = json_string_value(json_object_get(json_object_get(m, "text"), "content"));
	if (!id || !t || strcmp(t, l->text) != 0 || known_msgid(l->w, id))
		return 0;
	int match = 0;
	long r = task_matches(l->w, id, l->staff, l->to, &match);
	if (r != 0) {
		l->found = r < 0 ? r : -r;
	} else if (match) {
		snprintf(l->msgid, l->mlen, "%s", id);
		l->found = 1;
	}
	return l->found != 0;
}

/* An attempt whose answer was lost: find the task it may have created.
 * get_groupmsg_list_v2 does not return `creator` for tasks created
 * through the API, so: company tasks (filter_type 0) created in the
 * attempt's window with exactly this text, not already ours, that
 * get_groupmsg_task shows are this sender's and whose send results name
 * one of the attempt's customers. 1 found (MSGID set), 0 not created, <0
 * the lookup failed. */
static long lookup(struct wecom *w, const char *staff, const char *text, const char *to, int64_t started_at,
                   char *msgid, size_t mlen)
{
	struct look l = {w, staff, text, to, msgid, mlen, 0};
	json_t *body = json_pack("{s:s, s:I, s:I, s:i, s:i}", "chat_type", "single", "start_time",
	                         (json_int_t)(started_at - LOOKUP_SLACK), "end_time",
	                         (json_int_t)(time(NULL) + LOOKUP_SLACK), "filter_type", 0, "limit", 100);
	long rc = wecom_pages(w, "get_groupmsg_list_v2", body, "group_msg_list", list_row, &l);
	if (rc != 0)
		return rc < 0 ? rc : -rc;
	return l.found;
}

/* Record OUTCOME for every linked touch of ES (inside a transaction); it
 * is reported after the commit. */
static void settle_all(struct wecom *w, struct entry *es, size_t n, const char *result, const char *reason,
                       int64_t not_before)
{
	for (size_t i = 0; i < n; i++) {
		if (!es[i].linked)
			continue;
		es[i].result = result;
		snprintf(es[i].reason, sizeof es[i].reason, "%s", reason);
		es[i].not_before = not_before;
		if (strcmp(result, "unknown") != 0) /* unknown: left claimed with its attempt */
			set_touch(w, es[i].id, result, reason, not_before);
	}
}

int wecom_in_list(json_t *list, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	return 0;
}

/* Report the outcome of each of ES that has one (after its commit). */
static void report_all(struct entry *es, size_t n, wecom_report_fn *report, void *ctx)
{
	for (size_t i = 0; i < n; i++)
		if (es[i].result) {
			report(ctx, es[i].tag, es[i].result, es[i].reason, es[i].not_before);
			es[i].tag = NULL;
		}
}

/* One add_msg_template: the attempt is committed before the call; the
 * outcomes are recorded in one transaction, then reported. */
static void create_task(struct wecom *w, struct entry *es, size_t n, wecom_report_fn *report, void *ctx)
{
	size_t linked;
	db_begin(w->db);
	int64_t task = insert_task(w, "template", es[0].text, es, n, &linked);
	if (!linked)
		set_task(w, task, "failed", "its touches were taken over by another run: not created");
	db_commit(w->db);
	if (!linked)
		return;
	json_t *to = json_array();
	for (size_t i = 0; i < n; i++)
		if (es[i].linked)
			json_array_append_new(to, json_string(es[i].to));
	json_t *body = json_pack("{s:s, s:o, s:s, s:{s:s}}", "chat_type", "single", "external_userid", to, "sender",
	                         es[0].staff, "text", "content", es[0].text);
	if (!body)
		smr_die(SMR_FATAL, "out of memory");
	json_t *a = NULL;
	char reason[256] = "", msgid[256] = "";
	long rc = wecom_call(w, "add_msg_template", body, &a, reason, sizeof reason);
	json_decref(body);
	long found = 0;
	const char *first = NULL;
	for (size_t i = 0; i < n && !first; i++)
		if (es[i].linked)
			first = es[i].to;
	if (rc == WECOM_LOST) /* it may exist: look before anything else */
		found = lookup(w, es[0].staff, es[0].text, first, time(NULL) - LOOKUP_SLACK, msgid, sizeof msgid);
	db_begin(w->db);
	if (rc == 0) {
		const char *m = json_string_value(json_object_get(a, "msgid"));
		mark_created(w, task, m ? m : "");
		json_t *fl = json_object_get(a, "fail_list");
		for (size_t i = 0; i < n; i++) {
			int failed = wecom_in_list(fl, es[i].to);
			settle_all(w, &es[i], 1, failed ? "failed" : "task_created",
			           failed ? "wecom fail_list: this customer cannot be sent to (not a friend of the sender?)" : "", 0);
		}
	} else if (rc == WECOM_LOST && found == 1) {
		mark_created(w, task, msgid);
		settle_all(w, es, n, "task_created", "the answer was lost; the task was found by looking it up", 0);
	} else if (rc == WECOM_LOST && found < 0) {
		settle_all(w, es, n, "unknown", "the answer was lost and the lookup failed; the next run looks again", 0);
	} else if (rc == 41048) {
		set_task(w, task, "failed", reason);
		settle_all(w, es, n, "failed", "wecom 41048: none of these customers can be sent to", 0);
	} else if (busy_error(rc) || rc == WECOM_DOWN || rc == WECOM_LOST || token_error(rc)) {
		set_task(w, task, "failed", rc == WECOM_LOST ? "the answer was lost; no such task: not created" : reason);
		settle_all(w, es, n, "deferred", reason, w->now + 600); /* nothing was created: later */
	} else {
		set_task(w, task, "failed", reason);
		settle_all(w, es, n, "failed", reason, 0);
	}
	db_commit(w->db);
	json_decref(a);
	report_all(es, n, report, ctx);
}

/* Touches whose answer was lost where WeCom offers no way to look the
 * attempt up (a moments job, a staff message): unknown for good, so that
 * nothing is created or sent twice; the attempt stays 'attempting'. */
static void settle_lost(struct wecom *w, int64_t task, struct entry *es, size_t n, const char *why)
{
	set_task(w, task, "attempting", why);
	for (size_t i = 0; i < n; i++)
		if (es[i].linked) {
			es[i].result = "unknown";
			snprintf(es[i].reason, sizeof es[i].reason, "%s", why);
			set_touch(w, es[i].id, "unknown", why, 0);
		}
}

/* Whether RC means nothing was done and a later call may work. */
static int try_later(long rc) { return busy_error(rc) || rc == WECOM_DOWN || token_error(rc); }

/* Inside the attempt's transaction: a post is seen by all the staff
 * member's customers, so ES (one sender, one text) joins that member's
 * open job for the same text (created, not yet settled) instead of
 * posting it twice; while another run is creating one (attempting, for
 * less than WECOM_HOLD seconds), ES waits a minute. 1 if so. */
static int join_moment(struct wecom *w, struct entry *es, size_t n)
{
	db_bind_text(w->db, w->open_moment, 1, es[0].staff);
	db_bind_text(w->db, w->open_moment, 2, es[0].text);
	db_bind_int(w->db, w->open_moment, 3, (int64_t)time(NULL) - WECOM_HOLD);
	int found = db_row(w->db, w->open_moment);
	int64_t job = found ? sqlite3_column_int64(w->open_moment, 0) : 0;
	int created = found && strcmp((const char *)sqlite3_column_text(w->open_moment, 1), "created") == 0;
	sqlite3_reset(w->open_moment);
	if (!found)
		return 0;
	link_touches(w, job, es, n);
	if (created)
		settle_all(w, es, n, "task_created", "joined the staff member's open moments job for the same text", 0);
	else
		settle_all(w, es, n, "deferred", "another run is creating the staff member's moments job for the same "
		                                 "text: joined when it is created", w->now + 60);
	return 1;
}

/* One add_moment_task for ES (one sender, one text): posted to the staff
 * member's own customers (visible_range.sender_list is that member; no
 * customer tag). The attempt is committed before the call; the job's
 * result is learned by smr-send --reconcile. */
static void create_moment(struct wecom *w, struct entry *es, size_t n, wecom_report_fn *report, void *ctx)
{
	size_t linked;
	db_begin(w->db);
	if (join_moment(w, es, n)) {
		db_commit(w->db);
		report_all(es, n, report, ctx);
		return;
	}
	int64_t task = insert_task(w, "moment", es[0].text, es, n, &linked);
	if (!linked)
		set_task(w, task, "failed", "its touches were taken over by another run: not created");
	db_commit(w->db);
	if (!linked)
		return;
	json_t *body = json_pack("{s:{s:s}, s:{s:{s:[s]}, s:{s:[]}}}", "text", "content", es[0].text, "visible_range",
	                         "sender_list", "user_list", es[0].staff, "external_contact_list", "tag_list");
	if (!body)
		smr_die(SMR_FATAL, "out of memory");
	json_t *a = NULL;
	char reason[256] = "";
	long rc = wecom_call(w, "add_moment_task", body, &a, reason, sizeof reason);
	json_decref(body);
	const char *jobid = rc == 0 ? json_string_value(json_object_get(a, "jobid")) : NULL;
	db_begin(w->db);
	if (rc == 0 && jobid && *jobid) {
		db_bind_int(w->db, w->job_created, 1, task);
		db_bind_text(w->db, w->job_created, 2, jobid);
		db_bind_int(w->db, w->job_created, 3, w->now);
		db_run(w->db, w->job_created);
		w->st.tasks++;
		settle_all(w, es, n, "task_created", "", 0);
	} else if (rc == 0 || rc == WECOM_LOST) {
		settle_lost(w, task, es, n, "the answer of add_moment_task was lost and a moments job cannot be looked "
		                            "up: left unknown, never created again");
	} else if (try_later(rc)) {
		set_task(w, task, "failed", reason);
		settle_all(w, es, n, "deferred", reason, w->now + 600);
	} else {
		set_task(w, task, "failed", reason);
		settle_all(w, es, n, "failed", reason, 0);
	}
	db_commit(w->db);
	json_decref(a);
	report_all(es, n, report, ctx);
}

/* A staff member's digest: its text, and where each touch's line ends. */
struct digest {
	char *text;
	size_t len, cap, head;     /* head: the end of the header line */
	size_t *end;               /* end[i]: the byte after touch i's line */
};

static void digest_add(struct digest *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		smr_die(SMR_FATAL, "out of memory");
	d->text = xgrow(d->text, &d->cap, d->len + (size_t)n + 1, 1);
	va_start(ap, fmt);
	vsnprintf(d->text + d->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	d->len += (size_t)n;
}

/* The digest of the first N of ES: a header, then one line per task. */
static void digest_build(struct digest *d, const struct entry *es, size_t n)
{
	d->len = 0;
	d->end = xrealloc(d->end, (n ? n : 1) * sizeof *d->end);
	digest_add(d, "smr: %zu SOP task%s to send by hand\n", n, n == 1 ? "" : "s");
	d->head = d->len;
	for (size_t i = 0; i < n; i++) {
		if (es[i].name[0])
			digest_add(d, "%zu. %s (%s): %s\n", i + 1, es[i].name, es[i].to, es[i].text);
		else
			digest_add(d, "%zu. %s: %s\n", i + 1, es[i].to, es[i].text);
		d->end[i] = d->len;
	}
}

/* Cut the digest into messages of at most WECOM_DIGEST_BYTES: at the last
 * line end that fits, else (a line longer than a message) at the last
 * character boundary. Fills CUT (the end of each message) and returns how
 * many. */
static size_t digest_split(const struct digest *d, size_t **cut)
{
	size_t n = 0, cap = 0, at = 0;
	while (at < d->len) {
		size_t len = utf8_cut(d->text + at, WECOM_DIGEST_BYTES);
		if (at + len < d->len) {
			size_t nl = len;
			while (nl > 0 && d->text[at + nl - 1] != '\n')
				nl--;
			if (nl > 0)
				len = nl;
		}
		*cut = xgrow(*cut, &cap, n + 1, sizeof **cut);
		(*cut)[n++] = at += len;
	}
	return n;
}

/* Messages sent to STAFF in the last minute (every run's): those WeCom
 * took, or whose answer was lost; not those it refused. */
static long digest_recent(struct wecom *w, const char *staff)
{
	db_bind_text(w->db, w->digest_count, 1, staff);
	db_bind_int(w->db, w->digest_count, 2, (int64_t)time(NULL) - 60);
	long k = db_row(w->db, w->digest_count) ? (long)sqlite3_column_int64(w->digest_count, 0) : 0;
	sqlite3_reset(w->digest_count);
	return k;
}

/* What one message/send did: 0 it reached the staff member, else the
 * result for the touches in it, with REASON. */
static const char *digest_call(struct wecom *w, const char *staff, const char *text, char *reason, size_t rlen,
                               int64_t *not_before)
{
	json_t *body = json_pack("{s:s, s:s, s:I, s:{s:s}, s:i, s:i}", "touser", staff, "msgtype", "text", "agentid",
	                         (json_int_t)w->agentid, "text", "content", text, "enable_duplicate_check", 1,
	                         "duplicate_check_interval", 1800);
	if (!body)
		smr_die(SMR_FATAL, "out of memory");
	json_t *a = NULL;
	long rc = wecom_call(w, "message/send", body, &a, reason, rlen);
	json_decref(body);
	const char *result = NULL;
	*not_before = 0;
	if (rc == 0) {
		const char *bad = json_string_value(json_object_get(a, "invaliduser"));
		char *list = xstrdup(bad ? bad : ""), *save = NULL;
		for (char *u = strtok_r(list, "|", &save); u && !result; u = strtok_r(NULL, "|", &save))
			if (strcmp(u, staff) == 0) {
				snprintf(reason, rlen, "message/send: staff member %s is in invaliduser (not a member the app "
				                       "can reach)", staff);
				result = "failed";
			}
		free(list);
	} else if (rc == WECOM_LOST) {
		snprintf(reason, rlen, "the answer of message/send was lost and a message cannot be looked up: "
		                       "left unknown, never sent again");
		result = "unknown";
	} else if (try_later(rc)) {
		*not_before = w->now + 600;
		result = "deferred";
	} else {
		result = "failed";
	}
	json_decref(a);
	return result;
}

/* How bad a result is, for a touch whose line spans messages. */
static int severity(const char *r)
{
	return !r ? 0 : !strcmp(r, "staff_notified") ? 1 : !strcmp(r, "unknown") ? 2 : !strcmp(r, "deferred") ? 3 : 4;
}

static void outcome(struct entry *e, const char *result, const char *reason, int64_t not_before)
{
	if (!e->linked || severity(result) <= severity(e->result))
		return;
	e->result = result;
	snprintf(e->reason, sizeof e->reason, "%s", reason);
	e->not_before = not_before;
}

/* Touches I..J-1 have their outcome: record them (inside a transaction). */
static void record_range(struct wecom *w, struct entry *es, size_t i, size_t j)
{
	for (; i < j; i++)
		if (es[i].linked && es[i].result)
			set_touch(w, es[i].id, es[i].result, es[i].reason, es[i].not_before);
}

/* The first LEN bytes of TEXT become TASK's text. */
static void set_task_text(struct wecom *w, int64_t task, char *text, size_t len)
{
	char save = text[len];
	text[len] = '\0';
	db_bind_int(w->db, w->task_text, 1, task);
	db_bind_text(w->db, w->task_text, 2, text);
	db_run(w->db, w->task_text);
	text[len] = save;
}

/* Move the linked entries of ES to its front, in their order. */
static void linked_first(struct entry *es, size_t n)
{
	struct entry *tmp = xcalloc(n, sizeof *tmp);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (es[i].linked)
			tmp[k++] = es[i];
	for (size_t i = 0; i < n; i++)
		if (!es[i].linked)
			tmp[k++] = es[i];
	memcpy(es, tmp, n * sizeof *es);
	free(tmp);
}

/* One staff member's digest through message/send: every task of ES this
 * run still holds listed (linked before the digest is written: a touch
 * another run took over is that run's to list), split into messages of
 * at most 2,048 bytes, at most WECOM_DIGEST_PER_MIN messages a minute
 * (every run's: the tasks that do not fit wait a minute). Each message is
 * an attempt committed before its call; a touch reached the staff member
 * (staff_notified) once every message holding its line did. */
static void send_digest(struct wecom *w, struct entry *es, size_t n, wecom_report_fn *report, void *ctx)
{
	struct digest d = {0};
	size_t *cut = NULL, ncut, held;
	long room = WECOM_DIGEST_PER_MIN - digest_recent(w, es[0].staff);
	db_begin(w->db);
	int64_t task = insert_task(w, "digest", "", es, n, &held);
	linked_first(es, n); /* the HELD entries this run still holds come first */
	size_t fit = held;
	for (int round = 0; round < 3; round++) { /* fewer tasks, a shorter header: converges at once */
		digest_build(&d, es, fit);
		ncut = fit ? digest_split(&d, &cut) : 0;
		if ((long)ncut <= room)
			break;
		size_t k = 0; /* the tasks whose lines end within the messages that may go */
		while (room > 0 && k < fit && d.end[k] <= cut[room - 1])
			k++;
		fit = k;
	}
	if ((long)ncut > room)
		fit = ncut = 0;
	if (ncut)
		set_task_text(w, task, d.text, cut[0]); /* the attempt's text: its first message */
	for (size_t i = fit; i < held; i++)
		outcome(&es[i], "deferred", "WeCom takes about 30 app messages a minute per staff member: this task "
		                            "waits for the next digest", w->now + 60);
	if (!fit)
		set_task(w, task, "failed", held ? "over the per-minute limit of messages: deferred" : "taken over");
	record_range(w, es, fit, held);
	db_commit(w->db);
	size_t first = 0; /* the first task whose line is not yet settled */
	for (size_t m = 0; m < ncut && first < fit; m++) {
		size_t from = m ? cut[m - 1] : 0, last = first;
		while (last < fit && d.end[last] <= cut[m])
			last++; /* tasks first..last-1 end in this message */
		if (m) { /* an attempt of its own; the tasks not yet settled move to it */
			db_begin(w->db);
			char save = d.text[cut[m]];
			d.text[cut[m]] = '\0';
			size_t ignore;
			task = insert_task(w, "digest", d.text + from, es + first, fit - first, &ignore);
			d.text[cut[m]] = save;
			db_commit(w->db);
		}
		char reason[256] = "", save = d.text[cut[m]];
		int64_t nb;
		d.text[cut[m]] = '\0';
		const char *r = digest_call(w, es[0].staff, d.text + from, reason, sizeof reason, &nb);
		d.text[cut[m]] = save;
		size_t start = last ? d.end[last - 1] : d.head;
		size_t upto = last < fit && start < cut[m] ? last + 1 : last; /* a line going on in the next one */
		for (size_t i = first; i < upto; i++)
			outcome(&es[i], r ? r : "staff_notified", r ? reason : "", nb);
		int stop = r && strcmp(r, "unknown") != 0; /* failed or deferred: the rest is not sent */
		if (stop)
			for (size_t i = upto; i < fit; i++)
				outcome(&es[i], r, reason, nb);
		db_begin(w->db);
		if (r && strcmp(r, "unknown") == 0)
			set_task(w, task, "attempting", reason);
		else
			set_task(w, task, r ? "failed" : "done", r ? reason : NULL);
		record_range(w, es, first, stop ? fit : last);
		db_commit(w->db);
		first = stop ? fit : last;
	}
	free(d.text);
	free(d.end);
	free(cut);
	report_all(es, n, report, ctx);
}

void wecom_flush(struct wecom *w, int64_t now, wecom_report_fn *report, void *ctx)
{
	if (!w->nq)
		return;
	w->now = now;
	qsort(w->q, w->nq, sizeof *w->q, by_sender_text);
	for (size_t i = 0; i < w->nq;) {
		size_t j = i + 1;
		while (j < w->nq && same_group(&w->q[i], &w->q[j]) == 0 && (w->q[i].kind != 't' || j - i < (size_t)w->batch))
			j++;
		if (w->q[i].kind == 'm')
			create_moment(w, &w->q[i], j - i, report, ctx);
		else if (w->q[i].kind == 'd')
			send_digest(w, &w->q[i], j - i, report, ctx);
		else
			create_task(w, &w->q[i], j - i, report, ctx);
		i = j;
	}
	for (size_t i = 0; i < w->nq; i++) {
		free(w->q[i].text);
		free(w->q[i].name);
		if (w->q[i].tag) /* taken over by another run: no outcome here */
			report(ctx, w->q[i].tag, NULL, NULL, 0);
	}
	w->nq = 0;
}

/* ---- recovery after a crash ---- */

/* A moments job or a staff message whose run died: what its touches
 * became. Neither can be looked up at WeCom, so an attempt without its
 * answer leaves them unknown, never tried again. */
static void recover_other(struct wecom *w, int64_t task, const char *kind, const char *state)
{
	const char *to = "unknown", *why = "its sender died during the call, which cannot be looked up at WeCom: "
	                                  "left unknown, never tried again";
	if (strcmp(state, "created") == 0 || strcmp(state, "done") == 0) {
		to = strcmp(kind, "moment") == 0 ? "task_created" : "staff_notified";
		why = "its sender died after WeCom's answer was recorded";
	} else if (strcmp(state, "attempting") != 0) {
		db_bind_int(w->db, w->requeue, 1, task);
		db_bind_text(w->db, w->requeue, 2, "its sender died; WeCom did not take it: queued again");
		db_run(w->db, w->requeue);
		return;
	}
	sqlite3_stmt *move = db_prepare(w->db, "UPDATE touch SET state = ?4, reason = ?3, "
	                                       "sent_at = CASE WHEN ?4 = 'unknown' THEN sent_at ELSE ?2 END "
	                                       "WHERE wecom_task = ?1 AND state = 'claimed'");
	db_bind_int(w->db, move, 1, task);
	db_bind_int(w->db, move, 2, w->now);
	db_bind_text(w->db, move, 3, why);
	db_bind_text(w->db, move, 4, to);
	db_run(w->db, move);
	sqlite3_finalize(move);
}

void wecom_recover_touch(struct wecom *w, int64_t now, int64_t id)
{
	w->now = now;
	db_bind_int(w->db, w->recover_row, 1, id);
	if (!db_row(w->db, w->recover_row)) {
		sqlite3_reset(w->recover_row);
		return; /* resolved with another touch of its task */
	}
	int has_task = sqlite3_column_type(w->recover_row, 0) != SQLITE_NULL;
	int64_t task = sqlite3_column_int64(w->recover_row, 0);
	const char *st = (const char *)sqlite3_column_text(w->recover_row, 1);
	char state[16], staff[128], *text = NULL;
	snprintf(state, sizeof state, "%s", st ? st : "");
	snprintf(staff, sizeof staff, "%s", has_task ? (const char *)sqlite3_column_text(w->recover_row, 2) : "");
	if (has_task)
		text = xstrdup((const char *)sqlite3_column_text(w->recover_row, 3));
	int64_t started = sqlite3_column_int64(w->recover_row, 4);
	char kind[16];
	snprintf(kind, sizeof kind, "%s", has_task ? (const char *)sqlite3_column_text(w->recover_row, 5) : "");
	sqlite3_reset(w->recover_row);
	if (!has_task) {
		set_touch(w, id, "queued", "claimed by a sender that died before calling WeCom; queued again", 0);
		return;
	}
	if (strcmp(kind, "template") != 0) {
		free(text);
		recover_other(w, task, kind, state);
		return;
	}
	char to[128] = "", msgid[256];
	db_bind_int(w->db, w->first_to, 1, task);
	if (db_row(w->db, w->first_to))
		snprintf(to, sizeof to, "%s", (const char *)sqlite3_column_text(w->first_to, 0));
	sqlite3_reset(w->first_to);
	long found = strcmp(state, "attempting") == 0 ? lookup(w, staff, text, to, started, msgid, sizeof msgid) : 0;
	free(text);
	if (found < 0)
		return; /* still unknown: the next run looks again */
	sqlite3_stmt *move = db_prepare(w->db, "UPDATE touch SET state = 'task_created', sent_at = ?2, reason = ?3 "
	                                       "WHERE wecom_task = ?1 AND state = 'claimed'");
	if (found == 1 || strcmp(state, "created") == 0) {
		if (found == 1)
			mark_created(w, task, msgid);
		db_bind_int(w->db, move, 1, task);
		db_bind_int(w->db, move, 2, w->now);
		db_bind_text(w->db, move, 3, "its sender died; the task was found by looking it up");
		db_run(w->db, move);
	} else {
		set_task(w, task, "failed", "its sender died; WeCom has no such task: not created");
		db_bind_int(w->db, w->requeue, 1, task);
		db_bind_text(w->db, w->requeue, 2, "its sender died before WeCom created the task; queued again");
		db_run(w->db, w->requeue);
	}
	sqlite3_finalize(move);
}
