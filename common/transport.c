#include "transport.h"
#include "err.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum kind { T_FILE, T_EXEC, T_WEBHOOK };

#define EXEC_MAX_ARGS 32
#define WEBHOOK_TRIES 4

struct transport {
	enum kind kind;
	FILE *f;
	char *path;
	char *argbuf;
	char *argv[EXEC_MAX_ARGS + 1];
	CURL *curl;
	char *url;
};

static int split_args(struct transport *t, const char *cmd)
{
	t->argbuf = xstrdup(cmd);
	int n = 0;
	for (char *p = strtok(t->argbuf, " \t"); p; p = strtok(NULL, " \t")) {
		if (n == EXEC_MAX_ARGS)
			return -1;
		t->argv[n++] = p;
	}
	t->argv[n] = NULL;
	return n ? 0 : -1;
}

struct transport *transport_open(const char *spec, char *err, size_t errlen)
{
	struct transport *t = xcalloc(1, sizeof *t);
	if (strncmp(spec, "file:", 5) == 0 && spec[5]) {
		t->kind = T_FILE;
		t->path = xstrdup(spec + 5);
		t->f = fopen(t->path, "ae"); /* not inherited by exec: commands */
		if (!t->f) {
			snprintf(err, errlen, "%s: %s", t->path, strerror(errno));
			transport_close(t);
			return NULL;
		}
	} else if (strncmp(spec, "exec:", 5) == 0) {
		t->kind = T_EXEC;
		if (split_args(t, spec + 5) != 0) {
			snprintf(err, errlen, "exec: needs a command (at most %d words)", EXEC_MAX_ARGS);
			transport_close(t);
			return NULL;
		}
		signal(SIGPIPE, SIG_IGN); /* a command that does not read its input */
	} else if (strncmp(spec, "webhook:", 8) == 0 && (strncmp(spec + 8, "http://", 7) == 0 || strncmp(spec + 8, "https://", 8) == 0)) {
		t->kind = T_WEBHOOK;
		t->url = xstrdup(spec + 8);
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(t->curl = curl_easy_init())) {
			snprintf(err, errlen, "libcurl failed to start");
			transport_close(t);
			return NULL;
		}
	} else {
		snprintf(err, errlen, "unknown transport \"%s\" (file:PATH, exec:CMD or webhook:URL)", spec);
		free(t);
		return NULL;
	}
	return t;
}

void transport_close(struct transport *t)
{
	if (!t)
		return;
	if (t->f && fclose(t->f) != 0)
		smr_warnx(t->path, 0, "%s", strerror(errno));
	if (t->curl) {
		curl_easy_cleanup(t->curl);
		curl_global_cleanup();
	}
	free(t->path);
	free(t->argbuf);
	free(t->url);
	free(t);
}

int transport_idempotent(const struct transport *t) { return t->kind == T_WEBHOOK; }

static enum delivery send_file(struct transport *t, const char *msg, char *reason, size_t rlen)
{
	if (fputs(msg, t->f) == EOF || fputc('\n', t->f) == EOF || fflush(t->f) != 0) {
		snprintf(reason, rlen, "%s: %s", t->path, strerror(errno));
		return DELIVERY_FAILED;
	}
	return DELIVERED;
}

static long env_long(const char *name, long dflt);

/* Wait for PID at most MS milliseconds (SIGCHLD blocked by the caller).
 * 1: it exited (STATUS set); 0: timed out and killed; -1: error. */
static int wait_limited(pid_t pid, int *status, long ms)
{
	struct timespec now, end;
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += (ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid)
			return 1;
		if (w < 0 && errno != EINTR)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long left_ns = (long)(end.tv_sec - now.tv_sec) * 1000000000L + (end.tv_nsec - now.tv_nsec);
		if (left_ns <= 0) {
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return 0;
		}
		struct timespec left = {left_ns / 1000000000L, left_ns % 1000000000L};
		sigtimedwait(&chld, NULL, &left); /* a SIGCHLD, a timeout or an interruption: look again */
	}
}

static enum delivery send_exec(struct transport *t, const char *msg, char *reason, size_t rlen)
{
	int fds[2];
	if (pipe(fds) != 0) {
		snprintf(reason, rlen, "pipe: %s", strerror(errno));
		return RETRY_LATER;
	}
	fflush(stdout);
	/* SIGCHLD blocked, so that sigtimedwait can wait for the command with
	 * a time limit */
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	pid_t pid = fork();
	if (pid < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(fds[0]);
		close(fds[1]);
		snprintf(reason, rlen, "fork: %s", strerror(errno));
		return RETRY_LATER;
	}
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		dup2(fds[0], STDIN_FILENO);
		dup2(STDERR_FILENO, STDOUT_FILENO); /* keep smr-send's output records clean */
		close(fds[0]);
		close(fds[1]);
		execvp(t->argv[0], t->argv);
		_exit(127);
	}
	close(fds[0]);
	size_t len = strlen(msg), off = 0;
	while (off < len) {
		ssize_t w = write(fds[1], msg + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* the command closed its input: its exit status decides */
		off += (size_t)w;
	}
	if (off == len && write(fds[1], "\n", 1) != 1)
		off = 0;
	close(fds[1]);
	int status;
	int rc = wait_limited(pid, &status, env_long("SMR_EXEC_TIMEOUT_MS", 30000));
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		snprintf(reason, rlen, "waitpid: %s", strerror(errno));
		return DELIVERY_FAILED;
	}
	if (rc == 0) {
		/* it may or may not have delivered: failed, never retried */
		snprintf(reason, rlen, "%s timed out and was killed (not retried: it may have delivered)", t->argv[0]);
		return DELIVERY_FAILED;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return DELIVERED;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 75) {
		snprintf(reason, rlen, "%s exited 75 (try again later)", t->argv[0]);
		return RETRY_LATER;
	}
	if (WIFEXITED(status))
		snprintf(reason, rlen, "%s exited %d", t->argv[0], WEXITSTATUS(status));
	else
		snprintf(reason, rlen, "%s killed by signal %d", t->argv[0], WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return DELIVERY_FAILED;
}

static size_t discard(void *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

static void backoff(int attempt)
{
	/* 0.5 s, 1 s, 2 s ... times a jitter between 0.5 and 1.5 */
	double s = 0.5 * (double)(1 << attempt) * (0.5 + (double)rand() / RAND_MAX);
	const char *scale = getenv("SMR_WEBHOOK_BACKOFF_SCALE"); /* tests shorten the waits */
	if (scale)
		s *= atof(scale);
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v && atol(v) > 0 ? atol(v) : dflt;
}

static enum delivery send_webhook(struct transport *t, const char *msg, const char *key, char *reason, size_t rlen)
{
	char hdr[160];
	snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	struct curl_slist *h2 = h ? curl_slist_append(h, hdr) : NULL;
	if (!h2) {
		curl_slist_free_all(h);
		snprintf(reason, rlen, "out of memory");
		return RETRY_LATER;
	}
	h = h2;
	CURL *c = t->curl;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, t->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, msg);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, env_long("SMR_WEBHOOK_CONNECT_MS", 5000));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, env_long("SMR_WEBHOOK_TIMEOUT_MS", 15000));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	enum delivery d = RETRY_LATER;
	for (int attempt = 0; attempt < WEBHOOK_TRIES; attempt++) {
		if (attempt)
			backoff(attempt - 1);
		CURLcode rc = curl_easy_perform(c);
		long code = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (rc == CURLE_OK && code >= 200 && code < 300) {
			d = DELIVERED;
			break;
		}
		if (rc != CURLE_OK)
			snprintf(reason, rlen, "webhook: %s", curl_easy_strerror(rc));
		else
			snprintf(reason, rlen, "webhook: HTTP %ld", code);
		if (rc == CURLE_OK && code != 429 && code < 500) {
			d = DELIVERY_FAILED; /* the receiver refused it: retrying will not help */
			break;
		}
	}
	curl_slist_free_all(h);
	return d;
}

enum delivery transport_send(struct transport *t, const char *msg, const char *key, char *reason, size_t rlen)
{
	reason[0] = '\0';
	switch (t->kind) {
	case T_FILE: return send_file(t, msg, reason, rlen);
	case T_EXEC: return send_exec(t, msg, reason, rlen);
	default: return send_webhook(t, msg, key, reason, rlen);
	}
}
