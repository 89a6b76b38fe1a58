/* The pause container of the local node (tests/cluster/node.py): holds a
 * pod's namespaces, reaps orphans, exits on SIGINT or SIGTERM. Built static
 * by scripts/setup, so its image needs nothing else. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, 0, WNOHANG) > 0) {
  }
}

int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
