/* The pod sandbox's process for tests/system/tests/containerd/main.rs (the role of Kubernetes' "pause" image):
 * holds the pod's namespaces and exits 0 on SIGTERM or SIGINT. Built with `cc -static`. */
#include <signal.h>
#include <unistd.h>

static void done(int sig)
{
	(void)sig;
	_exit(0);
}

int main(void)
{
	signal(SIGTERM, done);
	signal(SIGINT, done);
	for (;;)
		pause();
}
