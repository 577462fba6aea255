/* Key helpers: fingerprints as ssh-keygen prints them, private key checks. */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* "SHA256:<base64 without padding>", exactly like ssh-keygen -l. */
char *
key_fingerprint(ssh_key key)
{
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp, *ret;

	if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
	    &hlen) != 0)
		return xstrdup("SHA256:?");
	fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	ssh_clean_pubkey_hash(&hash);
	if (fp == NULL)
		return xstrdup("SHA256:?");
	ret = xstrdup(fp);
	ssh_string_free_char(fp);
	return ret;
}

/* Refuse a private key readable by group or others, as ssh does. */
int
key_file_private_ok(const char *path, char *err, size_t len)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		snprintf(err, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, len, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, len, "%s: permissions %04o are too open "
		    "(private key must not be accessible by group or others; "
		    "chmod 600 it)", path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}
