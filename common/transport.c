#include "transport.h"
#include "err.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum kind { T_FILE, T_EXEC, T_WEBHOOK };

#define EXEC_MAX_ARGS 32
#define WEBHOOK_TRIES 4

struct transport {
	enum kind kind;
	int fd;
	char *path;
	char *argbuf;
	char *argv[EXEC_MAX_ARGS + 1];
	char **envp;         /* exec: the environment without secrets */
	CURL *curl;
	char *url;
};

static int has_word(const char *name, size_t len, const char *word)
{
	size_t wl = strlen(word);
	for (size_t i = 0; i + wl <= len; i++)
		if (strncasecmp(name + i, word, wl) == 0)
			return 1;
	return 0;
}

int transport_secret_name(const char *name)
{
	size_t len = strcspn(name, "=");
	static const char *const words[] = {"SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL"};
	if (len == 12 && strncmp(name, "SMR_HASH_KEY", 12) == 0)
		return 1;
	if ((len >= 4 && strncasecmp(name + len - 4, "_KEY", 4) == 0) || (len == 3 && strncasecmp(name, "KEY", 3) == 0))
		return 1;
	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (has_word(name, len, words[i]))
			return 1;
	return 0;
}

/* The environment, less its secrets (the strings are environ's own). */
static char **scrubbed_environ(void)
{
	size_t n = 0, k = 0;
	while (environ && environ[n])
		n++;
	char **env = xcalloc(n + 1, sizeof *env);
	for (size_t i = 0; i < n; i++)
		if (!transport_secret_name(environ[i]))
			env[k++] = environ[i];
	env[k] = NULL;
	return env;
}

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
	t->fd = -1;
	if (strncmp(spec, "file:", 5) == 0 && spec[5]) {
		t->kind = T_FILE;
		t->path = xstrdup(spec + 5);
		/* personal data: 0600 from its first byte, like the database */
		t->fd = open(t->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (t->fd < 0) {
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
		t->envp = scrubbed_environ();
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
	if (t->fd >= 0 && close(t->fd) != 0)
		smr_warn(t->path, 0, "close");
	free(t->envp);
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
int transport_local(const struct transport *t) { return t->kind == T_FILE; }

/* One message, one line, one write(2) on an O_APPEND descriptor. On an
 * error (disk full) the bytes of a partial line are cut off again when
 * nothing was appended after them, and the transport is broken: the touch
 * is retried by a later run. */
static enum delivery send_file(struct transport *t, const char *msg, char *reason, size_t rlen)
{
	size_t len = strlen(msg), done = 0;
	struct stat sb;
	off_t before = fstat(t->fd, &sb) == 0 ? sb.st_size : -1;
	while (done < len + 1) {
		struct iovec iov[2] = {{(char *)msg + (done < len ? done : len), done < len ? len - done : 0},
		                       {"\n", 1}};
		ssize_t w = writev(t->fd, iov, 2);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int err = w < 0 ? errno : EIO;
			if (done && before >= 0 && fstat(t->fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
			    sb.st_size == before + (off_t)done && ftruncate(t->fd, before) != 0)
				smr_warn(t->path, 0, "a partial line is left");
			snprintf(reason, rlen, "%s: %s", t->path, strerror(err));
			return TRANSPORT_BROKEN;
		}
		done += (size_t)w;
	}
	return DELIVERED;
}

static long env_long(const char *name, long dflt);

/* A deadline MS milliseconds from now, on the monotonic clock. */
static struct timespec deadline_in(long ms)
{
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += (ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	return end;
}

/* Nanoseconds left until END (0 or less: passed). */
static long long ns_left(const struct timespec *end)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(end->tv_sec - now.tv_sec) * 1000000000LL + (end->tv_nsec - now.tv_nsec);
}

/* Wait for PID until END (SIGCHLD blocked by the caller), killing it then.
 * 1: it exited (STATUS set); 0: timed out and killed; -1: error. */
static int wait_limited(pid_t pid, int *status, const struct timespec *end)
{
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid)
			return 1;
		if (w < 0 && errno != EINTR)
			return -1;
		long long left_ns = ns_left(end);
		if (left_ns <= 0) {
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return 0;
		}
		struct timespec left = {(time_t)(left_ns / 1000000000LL), (long)(left_ns % 1000000000LL)};
		sigtimedwait(&chld, NULL, &left); /* a SIGCHLD, a timeout or an interruption: look again */
	}
}

/* Write BUF to the command's input (non-blocking) until END: 1 written or
 * the command closed its input (its exit status decides), 0 timed out. */
static int write_limited(int fd, const char *buf, size_t len, const struct timespec *end)
{
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return 1; /* EPIPE: the command does not read its input */
		long long left_ns = ns_left(end);
		if (left_ns <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int ms = left_ns / 1000000LL > 1000000 ? 1000000 : (int)(left_ns / 1000000LL) + 1;
		if (poll(&p, 1, ms) < 0 && errno != EINTR)
			return 1;
	}
	return 1;
}

static enum delivery send_exec(struct transport *t, const char *msg, char *reason, size_t rlen)
{
	/* the time limit covers writing the message as well as the command */
	struct timespec end = deadline_in(env_long("SMR_EXEC_TIMEOUT_MS", 30000));
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0) {
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
		dup2(fds[0], STDIN_FILENO); /* dup2 clears close-on-exec on the copy */
		dup2(STDERR_FILENO, STDOUT_FILENO); /* keep smr-send's output records clean */
		environ = t->envp;
		execvp(t->argv[0], t->argv);
		_exit(127);
	}
	close(fds[0]);
	size_t len = strlen(msg);
	char *line = xmalloc(len + 1);
	memcpy(line, msg, len);
	line[len] = '\n';
	if (fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0) /* then writes block: still correct, without the limit */
		smr_warn(NULL, 0, "exec: pipe");
	int written = write_limited(fds[1], line, len + 1, &end);
	free(line);
	close(fds[1]);
	if (!written) /* the deadline has passed: wait_limited kills it at once */
		end = deadline_in(0);
	int status;
	int rc = wait_limited(pid, &status, &end);
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
