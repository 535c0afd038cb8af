/* limits.h - every bound in kcpsocks, by name.
 *
 * Each module keeps its bounds in its own section here so that a reader
 * sees, in one file, how much memory and how many objects the program can
 * ever hold. Values that users may need to change are also config keys
 * (docs/CONFIG.md); the value here is then the default or the hard cap.
 */
#ifndef KCPSOCKS_LIMITS_H
#define KCPSOCKS_LIMITS_H

/* --- kcp --- */

/* --- envelope, replay, handshake --- */

/* --- mux --- */

/* --- socks5 --- */

/* --- daemons --- */

#endif
