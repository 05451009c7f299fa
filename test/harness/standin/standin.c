/*
 * Stand-in runc release binary for tests. Compiled statically with:
 *   -DVERSION='"1.2.9"'  what `runc --version` reports
 *   -DMODE=n             0 exec the real runc, 1 hang on create/run,
 *                        2 fail create/run, 3 fail create/run only when
 *                        installed (executable's own name is exactly "runc")
 *   -DREAL_RUNC='"/usr/sbin/runc"'
 * so that tests exercise the real container lifecycle through it.
 *
 * `runc init` (argv exactly that, argv[0] any path) is the rc93 hang: it
 * blocks for ever writing into a full pipe nobody reads (wchan pipe_write or
 * anon_pipe_write), as runc 1.0.0-rc93 did exporting its seccomp filter. Real
 * runc never runs the stand-in's init (it re-execs itself, the real binary),
 * so only tests that start `runc init` themselves get one. With
 * STANDIN_INIT=pause it sleeps instead, blocked on nothing: a `runc init` that
 * is not stuck. With STANDIN_CREATE=stuck-init, `create`/`run` starts
 * `/proc/self/exe init` under the same argv[0] and waits for it, as
 * `runc create <id>` waits for its init: a parent whose command line names
 * the container.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>

#ifndef VERSION
#define VERSION "0.0.0"
#endif
#ifndef MODE
#define MODE 0
#endif
#ifndef REAL_RUNC
#define REAL_RUNC "/usr/sbin/runc"
#endif

static int is_lifecycle(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "create") || !strcmp(argv[i], "run")) return 1;
  }
  return 0;
}

static int installed(void) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n < 0) return 0;
  self[n] = 0;
  const char *base = strrchr(self, '/');
  base = base ? base + 1 : self;
  return strcmp(base, "runc") == 0;
}

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif

static void stuck_init(void) {
  const char *how = getenv("STANDIN_INIT");
  if (how && !strcmp(how, "pause")) {
    for (;;) pause();
  }
  int fds[2];
  if (pipe(fds) != 0) _exit(1);
  /* the one page a user over fs.pipe-user-pages-soft gets */
  fcntl(fds[1], F_SETPIPE_SZ, 4096);
  static char filter[256 * 1024];
  memset(filter, 'f', sizeof(filter));
  for (;;) {
    if (write(fds[1], filter, sizeof(filter)) < 0) _exit(1);
  }
}

static int create_stuck_init(char *argv0) {
  pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    char *init_argv[] = {argv0, (char *)"init", NULL};
    execv("/proc/self/exe", init_argv);
    _exit(127);
  }
  int status;
  waitpid(child, &status, 0);
  return 1;
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "init")) stuck_init();
  const char *create = getenv("STANDIN_CREATE");
  if (create && !strcmp(create, "stuck-init") && is_lifecycle(argc, argv)) return create_stuck_init(argv[0]);
  if (argc == 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-v"))) {
    printf("runc version %s\ncommit: standin-mode%d\nspec: 1.2.0\ngo: go1.22.12\nlibseccomp: 2.5.5\n", VERSION, MODE);
    return 0;
  }
  if (is_lifecycle(argc, argv)) {
    if (MODE == 1) {
      for (;;) pause();
    }
    if (MODE == 2 || (MODE == 3 && installed())) {
      fprintf(stderr, "standin runc %s: simulated failure (mode %d)\n", VERSION, MODE);
      return 1;
    }
  }
  argv[0] = (char *)"runc";
  execv(REAL_RUNC, argv);
  perror("standin: exec " REAL_RUNC);
  return 127;
}
