/* Inside the library: the cn_dataset behind a public cn_data handle (src/api/data.c). */
#ifndef CN_API_DATA_H
#define CN_API_DATA_H
#include "convnet.h"
#include "data/dataset.h"

const cn_dataset *cn_data_dataset(const cn_data *data);

#endif
