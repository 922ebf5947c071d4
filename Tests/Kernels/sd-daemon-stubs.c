/* Linked only into the fully static `fathom` (build-static-fathom.sh). libpcap.a pulls in libdbus-1.a, whose
 * dbus-sysdeps-unix.o refers to libsystemd's socket-activation calls, and Debian ships no static libsystemd.
 * fathom never runs a socket-activated D-Bus server, so these answer "no sockets passed", as libsystemd does
 * outside systemd. */
int sd_listen_fds(int unset_environment)
{
	(void)unset_environment;
	return 0;
}

int sd_is_socket(int fd, int family, int type, int listening)
{
	(void)fd;
	(void)family;
	(void)type;
	(void)listening;
	return 0;
}
