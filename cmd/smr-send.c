/* smr-send: deliver touches with restraint. */
#include "../common/db.h"
#include "../common/err.h"
#include "../common/opts.h"
#include "../common/person.h"
#include "../common/policy.h"
#include "../common/reconcile.h"
#include "../common/rules.h"
#include "../common/sender.h"
#include "../common/sop.h"
#include "../common/source.h"
#include "../common/transport.h"
#include "../common/wecom.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct args {
	struct smr_opts o;
	const char *transport, *limit_arg;
	int queued, dry_run, stats, reconcile;
	long limit;
};

static void parse_args(struct args *a, int argc, char **argv)
{
	const struct opt table[] = {
		OPT_STRING("transport", "SPEC", &a->transport, "where messages go: file:, exec:, webhook: or wecom: (else $SMR_TRANSPORT)"),
		OPT_FLAG("queued", &a->queued, "send every queued touch that is due, instead of reading stdin"),
		OPT_FLAG("dry-run", &a->dry_run, "apply the policy and render; send and change nothing"),
		OPT_STRING("limit", "N", &a->limit_arg, "take at most N touches"),
		OPT_FLAG("stats", &a->stats, "print counts on standard error"),
		OPT_FLAG("reconcile", &a->reconcile, "settle the open WeCom tasks (with --transport wecom:); send nothing"),
		OPT_END,
	};
	opts_parse(argc, argv, table, NULL, &a->o);
	if (a->limit_arg && (a->limit = opts_int(a->limit_arg)) < 1)
		opts_usage_error(opts_usage(), "--limit needs a positive integer");
	if (!a->transport)
		a->transport = getenv("SMR_TRANSPORT");
	if (a->reconcile && (a->dry_run || (a->transport && strncmp(a->transport, "wecom:", 6) != 0)))
		opts_usage_error(opts_usage(), "--reconcile needs the wecom: transport and no --dry-run");
	if (!a->transport && !a->dry_run)
		opts_usage_error(opts_usage(), "--transport (or $SMR_TRANSPORT) is needed, e.g. file:out.ndjson");
}

/* Touch records on stdin (as smr-sop-due prints them): their ids go to
 * the sender. Returns the number of rejected lines. */
static long read_input(struct sender *snd)
{
	char err[256];
	struct source *src = source_open("-", FORMAT_NDJSON, NULL, err, sizeof err);
	if (!src)
		smr_die(SMR_FATAL, "<stdin>: %s", err);
	struct record rec;
	long rejected = 0;
	int rc;
	while ((rc = source_next(src, &rec)) == 1) {
		json_t *id = rec.obj ? json_object_get(rec.obj, "touch") : NULL;
		if (!json_is_integer(id) || json_integer_value(id) <= 0) {
			smr_warnx(source_name(src), rec.line, "%s", rec.obj ? "no \"touch\" id in the record" : rec.err);
			rejected++;
		} else {
			sender_input(snd, json_integer_value(id));
		}
		record_clear(&rec);
	}
	if (rc < 0)
		smr_die(SMR_FATAL, "<stdin>: %s", rec.err);
	source_close(src);
	return rejected;
}

/* --reconcile: settle the open WeCom tasks; nothing is sent. */
static int reconcile(const struct args *a, sqlite3 *db, struct wecom *wc)
{
	if (!wc) {
		smr_warnx(NULL, 0, "--reconcile needs --transport wecom:");
		return SMR_USAGE;
	}
	struct reconcile_stats st;
	reconcile_run(wc, db, a->o.now, stdout, &st);
	if (a->stats)
		fprintf(stderr, "smr-send: reconciled %ld tasks: delivered %ld, not_friend %ld, over_platform_limit %ld, "
		        "unconfirmed %ld, cancelled %ld, published %ld, failed %ld, reminded %ld, errors %ld; %ld API calls\n",
		        st.tasks, st.delivered, st.not_friend, st.over_limit, st.unconfirmed, st.cancelled, st.published,
		        st.failed, st.reminded, st.errors, wecom_stats(wc)->calls);
	return st.errors ? SMR_PARTIAL : SMR_OK;
}

/* Send the touches on stdin, or the queued ones. */
static int send_touches(const struct args *a, sqlite3 *db, const struct rules *r, struct sops *sops, struct policy *pol,
                        struct transport *t, struct wecom *wc)
{
	struct person_lookup *pl = person_lookup_open(db, r);
	struct sender *s = sender_open(db, sops, pol, pl, t, a->o.now, a->o.now_arg != NULL, a->dry_run, stdout);
	if (wc)
		sender_use_wecom(s, wc);
	long rejected = a->queued ? 0 : read_input(s);
	if (t || wc)
		sender_recover(s);
	sender_run(s, a->queued, a->limit);
	struct send_stats st;
	sender_close(s, &st);
	if (a->stats)
		fprintf(stderr, "smr-send: sent %ld, deferred %ld, suppressed %ld, failed %ld, unknown %ld, skipped %ld\n",
		        st.sent, st.deferred, st.suppressed, st.failed, st.unknown, st.skipped);
	if (a->stats && wc)
		fprintf(stderr, "smr-send: wecom: %ld API calls, %ld tokens fetched, %ld tasks created\n",
		        wecom_stats(wc)->calls, wecom_stats(wc)->tokens, wecom_stats(wc)->tasks);
	person_lookup_close(pl);
	return rejected || st.failed || st.unknown ? SMR_PARTIAL : SMR_OK;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	struct sops *sops = NULL;
	struct policy *pol = NULL;
	struct transport *t = NULL;
	struct wecom *wc = NULL;
	sqlite3 *db = NULL;
	char err[256];
	int rc = SMR_USAGE;
	smr_progname = "smr-send";
	parse_args(&a, argc, argv);
	struct rules *r = rules_load(a.o.rules, 1);
	if (!r)
		goto out;
	sops = sops_parse(r);
	pol = policy_parse(r);
	if (sops->errors || pol->errors)
		goto out;
	opts_resolve_now(&a.o);
	int wecom = a.transport && !a.dry_run && strncmp(a.transport, "wecom:", 6) == 0;
	if (a.transport && !a.dry_run && !wecom && !(t = transport_open(a.transport, err, sizeof err))) {
		smr_warnx(NULL, 0, "--transport: %s", err);
		goto out;
	}
	/* a closed standard output is an error to handle (exit 3, nothing
	 * left claimed), not a signal that kills the run mid-touch */
	signal(SIGPIPE, SIG_IGN);
	/* per-person look-ups scattered over the database: a large cache only
	 * makes memory follow the queue's size (measured: same speed at 16 MB) */
	db_cache_default(16);
	db = db_open(a.o.db);
	if (wecom && !(wc = wecom_open(a.transport + 6, db, a.o.db, a.o.now, err, sizeof err))) {
		smr_warnx(NULL, 0, "--transport: %s", err);
		goto out;
	}
	rc = a.reconcile ? reconcile(&a, db, wc) : send_touches(&a, db, r, sops, pol, t, wc);
out:
	wecom_close(wc);
	db_close(db);
	transport_close(t);
	policy_free(pol);
	sops_free(sops);
	rules_free(r);
	return rc;
}
