/* Prints the library's notes (convnet.h's note handler) on stdout and stderr. */
#ifndef CONVNET_CLI_NOTES_H
#define CONVNET_CLI_NOTES_H

/* Sets the handler, and the progress bars' width when stderr is a terminal; called once by
 * main before any command runs. */
void cli_notes_install(void);

#endif
