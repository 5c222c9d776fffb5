/*
 * htmlrw - the HTML work a message needs before it is sent: click-tracking
 * link rewriting, the open pixel, and the text/plain alternative.
 *
 * The input is final HTML (templates already rendered), as found in real
 * email: tags in any case, attributes with double, single or no quotes,
 * comments, conditional comments, <script>/<style> raw text, entities,
 * unclosed and stray tags. A tolerant tokenizer modelled on HTML5's reads
 * it; no tree is built. Rewriting copies the input through byte for byte
 * and changes only the href values it is told to, removes data-notrack
 * attributes and inserts the pixel. Every function runs in time linear in
 * its input, without recursion, and stops when the output buffer reaches
 * its limit.
 *
 * It does not: resolve relative URLs, convert character sets (input is
 * taken as UTF-8; other bytes pass through), interpret CSS beyond
 * display:none in a style attribute, look inside comments (so links in
 * Outlook conditional comments such as <!--[if mso]> VML buttons are not
 * rewritten), log, or do I/O. It keeps no global state: all functions are
 * safe to call from several threads at once.
 */
#ifndef LEADCAST_HTMLRW_H
#define LEADCAST_HTMLRW_H

#include <stddef.h>

#include "buf.h"

#define HTMLRW_TEXT_WIDTH       76      /* text line width, in code points */
#define HTMLRW_LINK_TEXT_MAX    200     /* link text bytes for the callback */
#define HTMLRW_URL_MAX          8192    /* replacement URL bytes at most */

/* One http(s) link found by htmlrw_rewrite(). The strings hold no NUL
 * byte, end with one, and live only during the callback. */
struct htmlrw_link {
	const char *url;        /* href, entity-decoded, tabs and newlines
	                         * removed, blanks trimmed */
	size_t url_len;
	const char *text;       /* visible text: tags stripped (an image counts
	                         * as its alt), entities decoded, whitespace
	                         * collapsed, controls dropped, cut to
	                         * HTMLRW_LINK_TEXT_MAX bytes at a character
	                         * boundary; <area>: its alt; "" if none */
	size_t text_len;
	const char *tag;        /* data-tag (else data-link-tag) value, decoded
	                         * and trimmed; NULL if neither is there */
	const char *element;    /* "a" or "area" */
	int index;              /* 0, 1, 2, ... in the order of the calls */
};

/*
 * Called for each http(s) link of an <a> or <area> without data-notrack.
 * Append the replacement URL (raw, not escaped: htmlrw escapes it; at most
 * HTMLRW_URL_MAX bytes, else the rewrite fails) to out and return 0; or
 * return 1 to leave the link as it is; or -1 to abort the rewrite.
 */
typedef int htmlrw_link_fn(void *arg, const struct htmlrw_link *link,
    struct buf *out);

/*
 * Append html (len bytes, need not be NUL-terminated) to out with each
 * link the callback replaces written back as href="..." (escaped), every
 * data-notrack attribute of <a>/<area> removed, and, if pixel_url is not
 * NULL, the open pixel
 *   <img src="PIXEL_URL" width="1" height="1" alt="" style="..." />
 * inserted before the last </body> end tag, else appended. fn may be NULL
 * (no link is rewritten; data-notrack attributes are still removed).
 * Links in comments, raw text (script, style, ...) and tags cut off by the
 * end of input are never touched; neither are mailto:, tel:, javascript:,
 * #fragment or relative links. Returns 0; or -1 if fn returned -1 or out
 * reached its limit (out then holds a partial result).
 */
int htmlrw_rewrite(const char *html, size_t len, htmlrw_link_fn *fn,
    void *arg, const char *pixel_url, struct buf *out);

/*
 * Append a readable text/plain version of html to out: LF line ends,
 * lines wrapped at HTMLRW_TEXT_WIDTH code points on word boundaries (and
 * between CJK characters), no trailing blanks, at most one blank line in a
 * row, ending with a newline unless empty. Block elements break lines;
 * paragraphs, headings and lists are set off by a blank line; <h1>/<h2>
 * are underlined with '='/'-'; list items start with "- " or "N. ";
 * blockquotes with "> "; <pre> keeps its lines; table cells of one line
 * share a line, a cell of several lines is set off by a blank line; images
 * show their alt text. Links read "text [N]", with a "Links:" list of
 * "[N] URL" at the end, one number per distinct URL (the first 256); a
 * link whose text is its URL (or the URL less its scheme) is written once
 * without a number; #fragment and javascript: links are text only.
 * Dropped: head, script, style, title, comments, and elements hidden by
 * style="display:none" or the hidden attribute (the preheader). Returns
 * 0, or -1 if out reached its limit or memory ran out.
 */
int htmlrw_to_text(const char *html, size_t len, struct buf *out);

/*
 * Append s with its character references decoded to out, as in HTML text:
 * common named entities (&amp; &nbsp; &copy; &mdash; &euro; &rsquo; ...,
 * the legacy ones such as &amp and &copy also without ';'), decimal and
 * hex numeric references (Windows-1252 meaning for 128-159; U+FFFD for 0,
 * surrogates and out of range), written as UTF-8. Anything else, including
 * unknown names, is copied as is. Returns 0, or -1 if out overflowed.
 */
int htmlrw_decode_entities(const char *s, size_t len, struct buf *out);

/*
 * Append s escaped for HTML text or a quoted attribute value to out:
 * & < > " ' become &amp; &lt; &gt; &quot; &#39;. Returns 0 or -1 (overflow).
 */
int htmlrw_escape(const char *s, size_t len, struct buf *out);

#endif
