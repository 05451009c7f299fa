/*
 * Stand-in runc release binary for tests. Compiled statically with:
 *   -DVERSION='"1.2.9"'  what `runc --version` reports
 *   -DMODE=n             0 exec the real runc, 1 hang on create/run,
 *                        2 fail create/run, 3 fail create/run only when
 *                        installed (executable's own name is exactly "runc")
 *   -DREAL_RUNC='"/usr/sbin/runc"'
 * so that tests exercise the real container lifecycle through it.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>

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

int main(int argc, char **argv) {
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
