/* SPDX-License-Identifier: MIT */
/* term.c: what mpchat shows, and the line its user types on a terminal. */
#include "mpchat.h"

#include <errno.h>
#include <locale.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

/*
 * On a terminal (input and output both) mpchat edits the typed line
 * itself, the terminal in non-canonical mode without echo. News that
 * comes while the user types erases the prompt and the typed text, shows
 * on its own line, and the prompt comes back under it with the text as
 * it was: nothing typed is hidden in the terminal's own line buffer.
 * Elsewhere (a pipe, a file, output redirected) lines are read whole by
 * chat_reader_line and a prompt is ended by a newline before news.
 *
 * The cursor always stays at the end of the typed text, so only the
 * rows the prompt and the text take need counting to erase them.
 */

/* A prompt, and what is typed after it, is on the screen. */
static bool at_prompt;

static struct {
	bool on;                        /* editing: the terminal is ours */
	int fd;
	struct termios saved;           /* the mode the user had */
	char prompt[2 * CHAT_MAX_NAME + 32];
	char buf[CHAT_MAX_LINE + 1];    /* the line being typed */
	size_t len;
	bool skipping;                  /* it passed CHAT_MAX_LINE */
	int esc;                        /* where in an escape sequence */
	size_t width;                   /* columns the prompt and the whole
					 * characters of the text take */
	size_t start;                   /* where the last character starts */
	int need;                       /* its UTF-8 bytes still to come */
	size_t row;                     /* the cursor's row, 0 = prompt's */
	unsigned char in[256];          /* read, not yet taken */
	size_t in_pos, in_len;
} ed;

/* Set by SIGCONT: the screen is the shell's, the prompt is drawn anew. */
static volatile sig_atomic_t resumed;

enum { ESC_NONE, ESC_START, ESC_CSI, ESC_SS3 };

/* Chat output is flushed at once: a prompt has no newline, and a pipe
 * reader (a test, a script) waits for each line. */
static void
flush(void)
{
	fflush(stdout);
}

/* Columns the text takes on the terminal (a byte that is not UTF-8 is
 * shown as one column, as terminals do). */
static size_t
text_width(const char *s, size_t n)
{
	mbstate_t st;
	memset(&st, 0, sizeof(st));
	size_t w = 0;
	while (n > 0) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s, n, &st);
		if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
			memset(&st, 0, sizeof(st));
			k = 1;
			w++;
		} else {
			int cw = wcwidth(wc);
			w += cw < 0 ? 1 : (size_t)cw;
		}
		s += k;
		n -= k;
	}
	return w;
}

static size_t
columns(void)
{
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		return ws.ws_col;
	}
	return 80;
}

/*
 * After ed.width columns are written, where the cursor is. A terminal
 * that has just filled a row leaves the cursor on its last column until
 * the next character; a line break then puts it at the start of the next
 * row, so the row count is the same for every width. Only called between
 * whole characters: the break must not split one.
 */
static void
settle_cursor(void)
{
	size_t cols = columns();
	if (ed.width > 0 && ed.width % cols == 0) {
		fputs("\r\n", stdout);
	}
	ed.row = ed.width / cols;
}

static void
draw(void)
{
	fputs(ed.prompt, stdout);
	fwrite(ed.buf, 1, ed.len, stdout);
	/* A character still coming counts once it is whole (key()). */
	ed.width = text_width(ed.prompt, strlen(ed.prompt)) +
	    text_width(ed.buf, ed.need > 0 ? ed.start : ed.len);
	settle_cursor();
	at_prompt = true;
	flush();
}

/* Erase the prompt and the typed text: back to the prompt's first row. */
static void
erase(void)
{
	fputc('\r', stdout);
	if (ed.row > 0) {
		printf("\033[%zuA", ed.row);
	}
	fputs("\033[J", stdout);
	ed.row = 0;
	at_prompt = false;
}

/* End the prompt's line, leaving it (and the text) on the screen. */
static void
end_line(void)
{
	if (ed.width == 0 || ed.width % columns() != 0) {
		fputc('\n', stdout);  /* else settle_cursor broke the line */
	}
	ed.row = 0;
	at_prompt = false;
	flush();
}

/* Before other output: erase the prompt (it is drawn again when input
 * is read), or end its line off a terminal mpchat edits on. */
static void
clear_prompt(void)
{
	if (!at_prompt) {
		return;
	}
	if (ed.on) {
		erase();
	} else {
		putchar('\n');
		at_prompt = false;
	}
}

void
chat_say(const char *fmt, ...)
{
	clear_prompt();
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	flush();
}

void
chat_prompt(const char *fmt, ...)
{
	clear_prompt();
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ed.prompt, sizeof(ed.prompt), fmt, ap);
	va_end(ap);
	if (ed.on) {
		draw();
	} else {
		fputs(ed.prompt, stdout);
		at_prompt = true;
		flush();
	}
}

bool
chat_prompt_shown(void)
{
	return at_prompt;
}

void
chat_prompt_answered(void)
{
	at_prompt = false;
}

static void
term_end(void)
{
	if (ed.on) {
		tcsetattr(ed.fd, TCSADRAIN, &ed.saved);
		ed.on = false;
	}
}

static void
set_raw(void)
{
	struct termios raw = ed.saved;
	/* Signals stay: Ctrl-C still leaves the chat as before. */
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | IEXTEN);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	tcsetattr(ed.fd, TCSADRAIN, &raw);
}

/* Ctrl-Z: the shell gets the terminal as the user had it; on SIGCONT
 * it is ours again and the prompt is drawn anew. */
static void
on_tstp(int sig)
{
	int e = errno;
	tcsetattr(ed.fd, TCSADRAIN, &ed.saved);
	signal(sig, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	/* Continued. */
	struct sigaction sa = { .sa_handler = on_tstp };
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
	errno = e;
}

static void
on_cont(int sig)
{
	(void)sig;
	int e = errno;
	if (ed.on) {
		set_raw();
	}
	resumed = 1;
	errno = e;
}

/* Ctrl-\ and the like: the terminal back as it was, then the default
 * action (a core dump) as without mpchat. */
static void
on_fatal(int sig)
{
	tcsetattr(ed.fd, TCSADRAIN, &ed.saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

bool
chat_term_start(int fd)
{
	if (ed.on || isatty(fd) != 1 || isatty(STDOUT_FILENO) != 1 ||
	    tcgetattr(fd, &ed.saved) != 0) {
		return false;
	}
	/* Widths of what is typed: chat text is UTF-8 whatever the
	 * locale says. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL) {
		setlocale(LC_CTYPE, "");
	}
	ed.fd = fd;
	ed.on = true;
	set_raw();
	atexit(term_end);
	struct sigaction sa = { .sa_handler = on_tstp };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTSTP, &sa, NULL);
	sa.sa_handler = on_cont;
	sigaction(SIGCONT, &sa, NULL);
	sa.sa_handler = on_fatal;
	sigaction(SIGQUIT, &sa, NULL);
	return true;
}

/* Drop the last character (its UTF-8 continuation bytes and its lead). */
static void
drop_char(void)
{
	while (ed.len > 0 && ((unsigned char)ed.buf[ed.len - 1] & 0xc0) ==
	    0x80) {
		ed.len--;
	}
	if (ed.len > 0) {
		ed.len--;
	}
}

/* Drop the last word and the blanks after it, as Ctrl-W does. */
static void
drop_word(void)
{
	while (ed.len > 0 && ed.buf[ed.len - 1] == ' ') {
		ed.len--;
	}
	while (ed.len > 0 && ed.buf[ed.len - 1] != ' ') {
		ed.len--;
	}
}

/* After a deletion: no character is left half typed. */
static void
redraw(void)
{
	ed.need = 0;
	erase();
	draw();
}

/* The line is done: copy it out and leave it on the screen. */
static enum chat_line
take_line(char *line, size_t *len)
{
	end_line();
	enum chat_line l = CHAT_LINE_OK;
	if (ed.skipping) {
		l = CHAT_LINE_LONG;
	} else {
		memcpy(line, ed.buf, ed.len);
		line[ed.len] = '\0';
		*len = ed.len;
	}
	ed.len = 0;
	ed.need = 0;
	ed.skipping = false;
	return l;
}

/* Bytes of the UTF-8 character a byte starts (1 for ASCII, and for a
 * byte that starts none: it shows as one column). */
static int
utf8_length(unsigned char lead)
{
	return lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
}

/* Add and echo one byte of the text; once it ends a character, count the
 * character's columns, which may fill a row. */
static void
add_byte(unsigned char c)
{
	if ((c & 0xc0) == 0x80 && ed.need > 0) {
		ed.need--;
	} else {
		if (ed.need > 0) {
			/* A character cut short: its bytes stay as they show. */
			ed.width += text_width(ed.buf + ed.start,
			    ed.len - ed.start);
		}
		ed.start = ed.len;
		ed.need = utf8_length(c) - 1;
	}
	ed.buf[ed.len++] = (char)c;
	fputc(c, stdout);
	if (ed.need == 0) {
		ed.width += text_width(ed.buf + ed.start, ed.len - ed.start);
		settle_cursor();
	}
}

/* Whether byte c ends an escape sequence the terminal sent for a key
 * (arrows, Home, F1...): those keys do nothing here. */
static bool
in_escape(unsigned char c)
{
	switch (ed.esc) {
	case ESC_START:
		ed.esc = c == '[' ? ESC_CSI : c == 'O' ? ESC_SS3 : ESC_NONE;
		return true;
	case ESC_CSI:
		if (c >= 0x40 && c <= 0x7e) {
			ed.esc = ESC_NONE;
		}
		return true;
	case ESC_SS3:
		ed.esc = ESC_NONE;
		return true;
	default:
		return false;
	}
}

/*
 * One key: true when it ends the line (*l says how). Printable bytes
 * (UTF-8 included) are added and echoed; control characters do their
 * usual editing or nothing, so none of them reaches the screen.
 */
static bool
key(unsigned char c, enum chat_line *l)
{
	if (in_escape(c)) {
		return false;
	}
	if (c == '\n' || c == '\r') {
		*l = CHAT_LINE_OK;
		return true;
	}
	if (c == 0x04) {                        /* Ctrl-D */
		if (ed.len > 0 || ed.skipping) {
			return false;
		}
		*l = CHAT_LINE_EOF;
		return true;
	}
	if (c == 0x7f || c == 0x08 || c == ed.saved.c_cc[VERASE]) {
		drop_char();
		ed.skipping = false;
		redraw();
	} else if (c == 0x15 || c == ed.saved.c_cc[VKILL]) {  /* Ctrl-U */
		ed.len = 0;
		ed.skipping = false;
		redraw();
	} else if (c == 0x17) {                 /* Ctrl-W */
		drop_word();
		ed.skipping = false;
		redraw();
	} else if (c == 0x0c) {                 /* Ctrl-L */
		fputs("\033[H\033[2J", stdout);
		ed.row = 0;
		draw();
	} else if (c == 0x1b) {
		ed.esc = ESC_START;
	} else if (c >= 0x20) {
		if (ed.len == CHAT_MAX_LINE) {
			/* Too long to send: the bell, and the line is
			 * refused at Enter as a long piped line is. */
			ed.skipping = true;
			fputc('\a', stdout);
		} else {
			add_byte(c);
		}
	}
	return false;
}

/*
 * chat_term_line: as chat_reader_line, on the terminal being edited.
 * The prompt last given to chat_prompt is drawn again, with the text
 * typed so far, whenever news has erased it.
 */
enum chat_line
chat_term_line(char *line, size_t *len, int timeout_ms)
{
	for (;;) {
		if (resumed) {
			resumed = 0;
			at_prompt = false;
			fputc('\n', stdout);
		}
		if (!at_prompt) {
			draw();
		}
		while (ed.in_pos < ed.in_len) {
			enum chat_line l;
			if (key(ed.in[ed.in_pos++], &l)) {
				if (l == CHAT_LINE_EOF) {
					end_line();
					return l;
				}
				return take_line(line, len);
			}
		}
		flush();
		if (chat_stop) {
			end_line();
			return CHAT_LINE_STOP;
		}
		struct pollfd p = { .fd = ed.fd, .events = POLLIN };
		int rv = poll(&p, 1, timeout_ms);
		if (rv < 0 && errno == EINTR) {
			continue;
		}
		if (rv == 0) {
			return CHAT_LINE_TIMEOUT;
		}
		ssize_t n = rv < 0 ? -1 : read(ed.fd, ed.in, sizeof(ed.in));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			/* The terminal hung up: what was typed is the last
			 * line, as a piped last line without newline is. */
			if (ed.len > 0 && !ed.skipping) {
				return take_line(line, len);
			}
			end_line();
			return CHAT_LINE_EOF;
		}
		ed.in_pos = 0;
		ed.in_len = (size_t)n;
	}
}
